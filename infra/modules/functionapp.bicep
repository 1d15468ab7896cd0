// The Flex Consumption plan and the Function App (Linux, Python 3.11) running SynosCD as its
// user-assigned identity. On Flex Consumption the language and version live in functionAppConfig.runtime
// (no FUNCTIONS_WORKER_RUNTIME / FUNCTIONS_EXTENSION_VERSION app settings), and the package is deployed
// to a blob container the platform reads with the same identity.

param location string
param planName string
param appName string
param tags object

@description('Resource id, client id of the user-assigned identity SynosCD runs as.')
param identityId string
param identityClientId string

param storageAccountName string
param deploymentContainerUrl string
param stateStore string
@description('Blob endpoint where synthesizer jobs exchange their ResourceList (user-delegation SAS).')
param synthBlobStore string
param stateTableName string
param queueName string
@description('Subnet for VNet integration (\'\': none); needed to reach private endpoints.')
param functionSubnetId string
param appInsightsConnectionString string
param keyVaultUrl string
param webhookSecretUri string

param targetSubscriptionId string
param targetResourceGroupName string
param containerAppEnvironmentName string

param githubRepoOwner string
param githubRepoName string
param githubBranch string
param githubConfigPath string
param githubApiUrl string

param timerSchedule string
param reconcileIntervalSeconds int
param pruneEnabled bool
param protectedAppsCsv string
param maxConcurrent int

param alwaysReadyInstances int
param maximumInstanceCount int
param instanceMemoryMB int

@description('Who may read the dashboard: easyauth (auth.bicep signs users in) or off.')
@allowed([
  'off'
  'easyauth'
])
param dashboardAuth string = 'off'

@description('SYNOSCD_TARGETS: more targets of the fleet as JSON (empty: none in the app settings).')
param targetsJson string = ''

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  name: appName
  location: location
  tags: tags
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    virtualNetworkSubnetId: empty(functionSubnetId) ? null : functionSubnetId
    // Key Vault reference app settings resolve as this identity (it holds Key Vault Secrets User).
    keyVaultReferenceIdentity: identityId
    siteConfig: {
      // No FTP, TLS 1.2 at least on the app and its deployment endpoint.
      ftpsState: 'Disabled'
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      http20Enabled: true
      appSettings: [
        // Functions runtime storage, identity-based: no connection string, no account key.
        {
          name: 'AzureWebJobsStorage__accountName'
          value: storageAccountName
        }
        {
          name: 'AzureWebJobsStorage__credential'
          value: 'managedidentity'
        }
        {
          name: 'AzureWebJobsStorage__clientId'
          value: identityClientId
        }
        {
          name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
          value: appInsightsConnectionString
        }
        // Application Insights takes no key-signed telemetry (local auth off): Entra as the identity.
        {
          name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING'
          value: 'ClientId=${identityClientId};Authorization=AAD'
        }
        // SynosCD (synoscd/config.py): where it reconciles ...
        {
          name: 'SYNOSCD_AZURE_SUBSCRIPTION_ID'
          value: targetSubscriptionId
        }
        {
          name: 'SYNOSCD_AZURE_RESOURCE_GROUP'
          value: targetResourceGroupName
        }
        {
          name: 'SYNOSCD_AZURE_CONTAINER_APP_ENVIRONMENT'
          value: containerAppEnvironmentName
        }
        {
          name: 'SYNOSCD_AZURE_MANAGED_IDENTITY_CLIENT_ID'
          value: identityClientId
        }
        {
          name: 'SYNOSCD_ARM_ENDPOINT'
          value: environment().resourceManager
        }
        // ... from which repository ...
        {
          name: 'SYNOSCD_GITHUB_REPO_OWNER'
          value: githubRepoOwner
        }
        {
          name: 'SYNOSCD_GITHUB_REPO_NAME'
          value: githubRepoName
        }
        {
          name: 'SYNOSCD_GITHUB_BRANCH'
          value: githubBranch
        }
        {
          name: 'SYNOSCD_GITHUB_CONFIG_PATH'
          value: githubConfigPath
        }
        {
          name: 'SYNOSCD_GITHUB_API_URL'
          value: githubApiUrl
        }
        // ... with which secrets (GitHub App id, installation id and key come from the vault) ...
        {
          name: 'SYNOSCD_KEYVAULT_URL'
          value: keyVaultUrl
        }
        {
          name: 'SYNOSCD_GITHUB_WEBHOOK_SECRET'
          value: '@Microsoft.KeyVault(SecretUri=${webhookSecretUri})'
        }
        // ... keeping its state where ...
        {
          name: 'SYNOSCD_STATE_STORE'
          value: stateStore
        }
        {
          name: 'SYNOSCD_STATE_TABLE'
          value: stateTableName
        }
        // The webhook's queue (same account as the state table; the trigger reads it through
        // AzureWebJobsStorage, identity-based above).
        {
          name: 'SYNOSCD_QUEUE_NAME'
          value: queueName
        }
        {
          name: 'SYNOSCD_SYNTH_BLOB_STORE'
          value: synthBlobStore
        }
        // ... and how often and how boldly (defaults; `synos set` overrides them in the state table).
        {
          name: 'SYNOSCD_TIMER_SCHEDULE'
          value: timerSchedule
        }
        {
          name: 'SYNOSCD_RECONCILE_INTERVAL_SECONDS'
          value: string(reconcileIntervalSeconds)
        }
        {
          name: 'SYNOSCD_PRUNE_ENABLED'
          value: pruneEnabled ? 'true' : 'false'
        }
        {
          name: 'SYNOSCD_PROTECTED_APPS_CSV'
          value: protectedAppsCsv
        }
        {
          name: 'SYNOSCD_MAX_CONCURRENT'
          value: string(maxConcurrent)
        }
        {
          name: 'SYNOSCD_UI_AUTH'
          value: dashboardAuth
        }
        {
          name: 'SYNOSCD_TARGETS'
          value: targetsJson
        }
      ]
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: deploymentContainerUrl
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
        // 'http' is the group of HTTP-triggered functions (the webhook and health).
        alwaysReady: alwaysReadyInstances > 0 ? [
          {
            name: 'http'
            instanceCount: alwaysReadyInstances
          }
        ] : []
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }
}

// Basic (user name and password) publishing credentials off for FTP and the deployment endpoint:
// deployments authenticate with Entra ID.
resource ftpCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'scm'
  properties: {
    allow: false
  }
}

output name string = site.name
output defaultHostName string = site.properties.defaultHostName
