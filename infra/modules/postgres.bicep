// Azure Database for PostgreSQL Flexible Server (databaseBackend = postgres).
//
// Authentication: password. The app's PG_DSN is a libpq connection string; the
// template writes it to Key Vault (secret `pg-dsn`) and the Function App reads
// it through a Key Vault reference. Entra ID tokens as passwords would need a
// token refresh inside the connection pool, which the app does not do.
// The admin password is also kept in the vault (`postgres-admin-password`) so
// operators can reach the server without redeploying.
//
// Network: public access limited to Azure services (the 0.0.0.0 rule), because
// a Flex Consumption app without VNet integration has no fixed outbound address.
// TLS is required (require_secure_transport is on by default; sslmode=require).

@description('Azure region of the resources.')
param location string

@description('Tags applied to every resource.')
param tags object = {}

@description('Server name (3-63 lowercase letters, digits and dashes).')
@minLength(3)
@maxLength(63)
param name string

@description('Key Vault the connection string is written to.')
param keyVaultName string

@description('Administrator login (also the login the app uses).')
param administratorLogin string

@description('Administrator password (letters and digits: it is embedded in a libpq DSN).')
@secure()
param administratorLoginPassword string

@description('Database the app replicates into.')
param databaseName string = 'calendar'

@description('PostgreSQL major version.')
@allowed([
  '14'
  '15'
  '16'
])
param version string = '16'

@description('Compute size, e.g. Standard_B1ms (Burstable) or Standard_D2ds_v5 (GeneralPurpose).')
param skuName string = 'Standard_B1ms'

@description('Compute tier matching skuName.')
@allowed([
  'Burstable'
  'GeneralPurpose'
  'MemoryOptimized'
])
param skuTier string = 'Burstable'

@description('Storage size in GiB.')
param storageSizeGB int = 32

@description('Days of point-in-time backups.')
@minValue(7)
@maxValue(35)
param backupRetentionDays int = 7

@description('Geo-redundant backups (not available with every SKU/region).')
@allowed([
  'Enabled'
  'Disabled'
])
param geoRedundantBackup string = 'Disabled'

resource server 'Microsoft.DBforPostgreSQL/flexibleServers@2024-08-01' = {
  name: name
  location: location
  tags: tags
  sku: {
    name: skuName
    tier: skuTier
  }
  properties: {
    version: version
    administratorLogin: administratorLogin
    administratorLoginPassword: administratorLoginPassword
    authConfig: {
      activeDirectoryAuth: 'Disabled'
      passwordAuth: 'Enabled'
    }
    storage: {
      storageSizeGB: storageSizeGB
      autoGrow: 'Enabled'
    }
    backup: {
      backupRetentionDays: backupRetentionDays
      geoRedundantBackup: geoRedundantBackup
    }
    highAvailability: {
      mode: 'Disabled'
    }
    network: {
      publicNetworkAccess: 'Enabled'
    }
  }

  resource database 'databases' = {
    name: databaseName
    properties: {
      charset: 'UTF8'
      collation: 'en_US.utf8'
    }
  }

  resource allowAzureServices 'firewallRules' = {
    name: 'AllowAllAzureServicesAndResourcesWithinAzureIps'
    properties: {
      startIpAddress: '0.0.0.0'
      endIpAddress: '0.0.0.0'
    }
  }
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource dsnSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: 'pg-dsn'
  properties: {
    contentType: 'text/plain; libpq connection string'
    value: 'host=${server.properties.fullyQualifiedDomainName} port=5432 dbname=${databaseName} user=${administratorLogin} password=${administratorLoginPassword} sslmode=require'
  }
}

resource passwordSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: 'postgres-admin-password'
  properties: {
    contentType: 'text/plain; PostgreSQL administrator password'
    value: administratorLoginPassword
  }
}

output serverName string = server.name
output fqdn string = server.properties.fullyQualifiedDomainName
output databaseName string = databaseName
output dsnSecretUri string = dsnSecret.properties.secretUri
