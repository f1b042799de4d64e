// Outlook calendar sync on Azure: Function App (Linux, Python 3.11, Flex
// Consumption by default), storage reached with the managed identity, Key
// Vault (RBAC), Application Insights + Log Analytics and, with
// databaseBackend = postgres, Azure Database for PostgreSQL Flexible Server.
//
// Deployed by `azd up` (azure.yaml, main.parameters.json); see docs/DEPLOY.md.
// Every setting the app reads (shared/config.py, deployed=True) is set in
// `appSettings` below; tests/infra checks the two lists stay equal.

targetScope = 'subscription'

@description('azd environment name; names the resource group and seeds resource names.')
@minLength(1)
@maxLength(64)
param environmentName string

@description('Azure region of every resource (Flex Consumption is offered in a subset of regions).')
@minLength(1)
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Object id of the user or pipeline running the deployment (azd sets AZURE_PRINCIPAL_ID); gets Key Vault Secrets Officer to store the client secret. Empty = none.')
param principalId string = ''

@description('Type of principalId.')
@allowed([
  'User'
  'ServicePrincipal'
  'Group'
])
param principalType string = 'User'

@description('Application (client) ID of the Entra ID app registration (docs/DEPLOY.md).')
@minLength(36)
@maxLength(36)
param clientId string

@description('Tenant in the authority: common, organizations or a tenant id (a tenant id is required for appOnly).')
param tenant string = 'common'

@description('Where rows are replicated: tables (Azure Table Storage in the app\'s storage account) or postgres (a Flexible Server this template creates).')
@allowed([
  'tables'
  'postgres'
])
param databaseBackend string = 'tables'

@description('Microsoft Graph root with version; pair it with authorityHost (global, US Gov L4, US Gov L5/DoD, China).')
@allowed([
  'https://graph.microsoft.com/v1.0'
  'https://graph.microsoft.us/v1.0'
  'https://dod-graph.microsoft.us/v1.0'
  'https://microsoftgraph.chinacloudapi.cn/v1.0'
])
param graphBaseUrl string = 'https://graph.microsoft.com/v1.0'

@description('Identity platform host; pair it with graphBaseUrl.')
@allowed([
  'https://login.microsoftonline.com'
  'https://login.microsoftonline.us'
  'https://login.chinacloudapi.cn'
])
param authorityHost string = 'https://login.microsoftonline.com'

@description('Delegated scopes asked at sign-in, space separated.')
param graphScopes string = 'User.Read Calendars.ReadWrite Mail.ReadWrite Mail.Send'

@description('Explicit authorize endpoint (deprecated connector connection kind); empty = derived from the authority.')
param authorizeUrl string = ''

@description('Explicit token endpoint, paired with authorizeUrl; empty = derived from the authority.')
param tokenUrl string = ''

@description('Client credentials for the whole tenant instead of per-user sign-in.')
param appOnly bool = false

@description('With appOnly: user ids or principal names to replicate (comma separated).')
param appOnlyUsers string = ''

@description('With appOnly: object id of a group whose members are replicated.')
param appOnlyGroup string = ''

@description('Log level of the app\'s own loggers.')
@allowed([
  'debug'
  'info'
  'warning'
  'error'
])
param logLevel string = 'info'

@description('WEBHOOKS: JSON array of HTTPS endpoints receiving the change feed (docs/CHANGE_FEED.md); each signs with the Key Vault secret webhook-<name>. Empty = none.')
param webhooks string = ''

@description('Hosting plan SKU: FC1 = Flex Consumption (default); B1, P0v3, P1v3 = dedicated Linux plan.')
@allowed([
  'FC1'
  'B1'
  'P0v3'
  'P1v3'
])
param planSku string = 'FC1'

@description('Flex Consumption: most instances the app scales out to.')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Flex Consumption: memory of one instance (MB).')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('PostgreSQL administrator login (the app connects with it).')
param postgresAdminLogin string = 'calsyncadmin'

@description('PostgreSQL administrator password; azd generates it (letters and digits). Unused with tables.')
@secure()
@metadata({
  azd: {
    type: 'generate'
    config: {
      length: 32
      noSpecial: true
      minLower: 2
      minUpper: 2
      minNumeric: 2
    }
  }
})
param postgresAdminPassword string

@description('PostgreSQL compute size.')
param postgresSkuName string = 'Standard_B1ms'

@description('PostgreSQL compute tier matching postgresSkuName.')
@allowed([
  'Burstable'
  'GeneralPurpose'
  'MemoryOptimized'
])
param postgresSkuTier string = 'Burstable'

var tags = {
  'azd-env-name': environmentName
  application: 'outlook-calendar-sync'
}
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var functionAppName = 'func-${resourceToken}'
var deploymentContainerName = 'app-package-${resourceToken}'
var usePostgres = databaseBackend == 'postgres'

// App Service host names per cloud (environment() has no suffix for them).
var appServiceSuffixes = {
  AzureCloud: 'azurewebsites.net'
  AzureUSGovernment: 'azurewebsites.us'
  AzureChinaCloud: 'chinacloudsites.cn'
}
var appServiceSuffix = contains(appServiceSuffixes, environment().name) ? appServiceSuffixes[environment().name] : 'azurewebsites.net'
var baseUrl = 'https://${functionAppName}.${appServiceSuffix}'

// Queues of shared/queues (SYNC_QUEUE, OUTBOUND_QUEUE, NOTIFICATIONS_QUEUE, WEBHOOK_QUEUE, RENEWAL_QUEUE) and the poison
// queues of the triggered ones (webhook-deliveries-poison is the webhooks' dead-letter queue).
var queueNames = [
  'calendar-sync'
  'calendar-sync-poison'
  'outlook-changes'
  'outlook-changes-poison'
  'outlook-notifications'
  'webhook-deliveries'
  'webhook-deliveries-poison'
  'subscription-renewal'
  'subscription-renewal-poison'
]

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    location: location
    tags: tags
    logAnalyticsName: 'log-${resourceToken}'
    applicationInsightsName: 'appi-${resourceToken}'
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    location: location
    tags: tags
    name: 'st${resourceToken}'
    deploymentContainerName: deploymentContainerName
    queueNames: queueNames
    logAnalyticsId: monitoring.outputs.logAnalyticsId
  }
}

module keyVault 'modules/keyvault.bicep' = {
  name: 'keyvault'
  scope: rg
  params: {
    location: location
    tags: tags
    name: 'kv-${resourceToken}'
  }
}

module postgres 'modules/postgres.bicep' = if (usePostgres) {
  name: 'postgres'
  scope: rg
  params: {
    location: location
    tags: tags
    name: 'psql-${resourceToken}'
    keyVaultName: keyVault.outputs.name
    administratorLogin: postgresAdminLogin
    administratorLoginPassword: postgresAdminPassword
    skuName: postgresSkuName
    skuTier: postgresSkuTier
  }
}

// Every setting of shared/config.py with deployed=True, except the two
// connection strings (TABLES_CONNECTION_STRING, QUEUE_CONNECTION_STRING): the
// account has shared keys disabled, the *_ACCOUNT_URL settings + the managed
// identity replace them. Tuning values repeat the code's defaults so they are
// visible and editable here.
var appSettings = {
  APP_BASE_URL: baseUrl
  DATABASE_BACKEND: databaseBackend
  PG_DSN: usePostgres ? '@Microsoft.KeyVault(SecretUri=${postgres.outputs.dsnSecretUri})' : ''
  PG_POOL_MAX: '4'
  TABLES_ACCOUNT_URL: storage.outputs.tableEndpoint
  BLOBS_ACCOUNT_URL: storage.outputs.blobEndpoint
  TABLE_PREFIX: 'calsync'
  QUEUE_ACCOUNT_URL: storage.outputs.queueEndpoint
  KEY_VAULT_URL: keyVault.outputs.uri
  SECRET_CACHE_SECONDS: '300'
  CLIENT_ID: clientId
  TENANT: tenant
  AUTHORITY_HOST: authorityHost
  GRAPH_BASE_URL: graphBaseUrl
  GRAPH_SCOPES: graphScopes
  AUTHORIZE_URL: authorizeUrl
  TOKEN_URL: tokenUrl
  APP_ONLY: appOnly ? 'true' : 'false'
  APP_ONLY_USERS: appOnlyUsers
  APP_ONLY_GROUP: appOnlyGroup
  GRAPH_TIMEOUT_SECONDS: '30'
  GRAPH_MAX_RETRIES: '5'
  MAX_REQUESTS_PER_MAILBOX: '4'
  SYNC_WINDOW_DAYS_BACK: '90'
  SYNC_WINDOW_DAYS_AHEAD: '365'
  DELTA_OTHER_CALENDARS: 'auto'
  CALENDAR_LIST_MAX_AGE_MINUTES: '30'
  MAX_CALENDAR_SUBSCRIPTIONS: '100'
  GRAPH_PAGE_SIZE: '100'
  SYNC_LEASE_SECONDS: '45'
  THROTTLE_REQUEUE_SECONDS: '5'
  IMMUTABLE_IDS: 'true'
  SUBSCRIPTION_LIFETIME_MINUTES: '10070'
  RENEWAL_SCHEDULE: '0 */30 * * * *'
  WINDOW_SCHEDULE: '0 15 3 * * *'
  RENEWAL_MARGIN_MINUTES: '60'
  RENEWAL_RESYNC: 'true'
  FEED_QUEUES: 'true'
  FEED_ROW_SCHEMA: 'row-changes.v2'
  WEBHOOKS: webhooks
  WEBHOOK_MAX_ATTEMPTS: '8'
  WEBHOOK_BACKOFF_SECONDS: '30'
  WEBHOOK_TIMEOUT_SECONDS: '10'
  LOG_LEVEL: logLevel
}

module functionApp 'modules/functionapp.bicep' = {
  name: 'functionapp'
  scope: rg
  params: {
    location: location
    tags: tags
    name: functionAppName
    planName: 'plan-${resourceToken}'
    planSku: planSku
    storageAccountName: storage.outputs.name
    deploymentContainerName: deploymentContainerName
    applicationInsightsConnectionString: monitoring.outputs.applicationInsightsConnectionString
    appSettings: appSettings
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
  }
}

module roles 'modules/roles.bicep' = {
  name: 'roles'
  scope: rg
  params: {
    appPrincipalId: functionApp.outputs.principalId
    deployerPrincipalId: principalId
    deployerPrincipalType: principalType
    storageAccountName: storage.outputs.name
    keyVaultName: keyVault.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
  }
}

// azd writes outputs into the environment (.azure/<env>/.env).
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.name
output AZURE_KEY_VAULT_ENDPOINT string = keyVault.outputs.uri
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name
output DATABASE_BACKEND string = databaseBackend
output FUNCTION_BASE_URL string = baseUrl
output OAUTH_REDIRECT_URI string = '${baseUrl}/api/oauth/callback'
output GRAPH_NOTIFICATION_URL string = '${baseUrl}/api/graph/notifications'
output GRAPH_LIFECYCLE_URL string = '${baseUrl}/api/graph/lifecycle'
