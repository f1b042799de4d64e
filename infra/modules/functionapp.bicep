// The Function App: Linux, Python 3.11, system-assigned managed identity.
// Flex Consumption (plan SKU FC1) by default; a dedicated App Service plan
// (B1, P0v3, P1v3) is the alternative when the app needs "always on".
//
// The app's own settings arrive in `appSettings` (main.bicep, mirroring
// shared/config.py); this module adds only the platform settings below.

@description('Azure region of the resources.')
param location string

@description('Tags applied to every resource.')
param tags object = {}

@description('Function App name (also the host name: <name>.azurewebsites.net).')
param name string

@description('Hosting plan name.')
param planName string

@description('Plan SKU: FC1 = Flex Consumption; B1, P0v3, P1v3 = dedicated Linux plan.')
@allowed([
  'FC1'
  'B1'
  'P0v3'
  'P1v3'
])
param planSku string = 'FC1'

@description('Storage account of AzureWebJobsStorage and the deployment container.')
param storageAccountName string

@description('Blob container Flex Consumption deploys the package from.')
param deploymentContainerName string

@description('Application Insights connection string.')
param applicationInsightsConnectionString string

@description('The app settings the code reads (shared/config.py), name -> value.')
param appSettings object

@description('Flex Consumption: most instances the app scales out to.')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Flex Consumption: memory of one instance.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

var isFlex = planSku == 'FC1'
var flexSku = {
  name: 'FC1'
  tier: 'FlexConsumption'
}
var dedicatedSku = {
  name: planSku
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: isFlex ? 'functionapp' : 'linux'
  sku: isFlex ? flexSku : dedicatedSku
  properties: {
    reserved: true
  }
}

// Settings the platform reads (not shared/config.py). The host's storage is
// reached with the managed identity: service URIs + credential, no key.
var platformSettings = {
  AzureWebJobsStorage__blobServiceUri: storage.properties.primaryEndpoints.blob
  AzureWebJobsStorage__queueServiceUri: storage.properties.primaryEndpoints.queue
  AzureWebJobsStorage__tableServiceUri: storage.properties.primaryEndpoints.table
  AzureWebJobsStorage__credential: 'managedidentity'
  APPLICATIONINSIGHTS_CONNECTION_STRING: applicationInsightsConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'Authorization=AAD'
}

// Flex Consumption takes the runtime from functionAppConfig and rejects these;
// a dedicated plan needs them, plus a remote build of requirements.txt.
var dedicatedSettings = {
  FUNCTIONS_EXTENSION_VERSION: '~4'
  FUNCTIONS_WORKER_RUNTIME: 'python'
  SCM_DO_BUILD_DURING_DEPLOYMENT: 'true'
}

var allSettings = union(appSettings, platformSettings, isFlex ? {} : dedicatedSettings)

// Flex Consumption: where the package is deployed from, the runtime, the scale.
var flexConfig = {
  deployment: {
    storage: {
      type: 'blobContainer'
      value: '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
      authentication: {
        type: 'SystemAssignedIdentity'
      }
    }
  }
  scaleAndConcurrency: {
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
  }
  runtime: {
    name: 'python'
    version: '3.11'
  }
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  tags: union(tags, { 'azd-service-name': 'api' })
  kind: 'functionapp,linux'
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientCertEnabled: false
    publicNetworkAccess: 'Enabled'
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      alwaysOn: isFlex ? null : true
      linuxFxVersion: isFlex ? null : 'PYTHON|3.11'
      healthCheckPath: isFlex ? null : '/api/health'
      appSettings: [for setting in items(allSettings): {
        name: setting.key
        value: setting.value
      }]
    }
    functionAppConfig: isFlex ? flexConfig : null
  }
}

// No FTP and no basic-auth publishing: azd and Core Tools deploy with Entra ID.
resource ftpPolicy 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmPolicy 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'scm'
  properties: {
    allow: false
  }
}

output name string = site.name
output principalId string = site.identity.principalId
output defaultHostName string = site.properties.defaultHostName
