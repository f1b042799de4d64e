// Key Vault in RBAC mode: the client secret (set by the operator, docs/DEPLOY.md),
// the token-encryption keys the app creates and rotates, and (with PostgreSQL)
// the connection string. Soft delete and purge protection are on.

@description('Azure region of the resources.')
param location string

@description('Tags applied to every resource.')
param tags object = {}

@description('Key Vault name (3-24 letters, digits and dashes).')
@minLength(3)
@maxLength(24)
param name string

@description('Days a deleted vault or secret can be recovered.')
@minValue(7)
@maxValue(90)
param softDeleteRetentionInDays int = 90

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: softDeleteRetentionInDays
    enablePurgeProtection: true
    enabledForDeployment: false
    enabledForDiskEncryption: false
    enabledForTemplateDeployment: false
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

output name string = vault.name
output id string = vault.id
output uri string = vault.properties.vaultUri
