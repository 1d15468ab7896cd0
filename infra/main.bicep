// SynosCD on Azure: a Flex Consumption Function App (Linux, Python 3.11) that reconciles one existing
// Container Apps environment, with everything it needs and nothing more:
//
//   user-assigned identity   SynosCD's only principal (ARM, Key Vault, storage, the deployment package)
//   storage account          Functions runtime + SynosCD state table + the webhook's queue (and its
//                            poison queue); shared keys disabled
//   Key Vault (RBAC mode)    github-app-id, github-app-installation-id, github-app-private-key,
//                            github-webhook-secret
//   Log Analytics + App Insights (local auth off: the identity publishes with Entra ID)
//   alerts + action group    no successful pass, failed passes, prune blocked, webhook signature
//                            failures (modules/alerts.bicep; docs/operations.md)
//   role assignments         least privilege, built-in roles only (modules/roles.bicep)
//   private endpoints        optional (privateEndpointSubnetId): storage and Key Vault reached privately,
//                            and their public network access closed (publicNetworkAccess)
//
// Deploy it into SynosCD's own resource group; the reconciled group (targetResourceGroupName) may be a
// different group of the same subscription. See docs/operations.md for the whole procedure.
//
//   az deployment group create -g RG -f infra/main.bicep -p infra/main.bicepparam \
//     -p githubAppId=123456 githubAppInstallationId=7890123 githubAppPrivateKey=@key.pem \
//        githubWebhookSecret=@webhook-secret.txt

targetScope = 'resourceGroup'

// -- where ---------------------------------------------------------------------------------------

@description('Region of SynosCD\'s own resources (the Flex Consumption plan must be available there).')
param location string = resourceGroup().location

@description('Short prefix of every resource name (lowercase letters and digits).')
@minLength(3)
@maxLength(11)
param namePrefix string = 'synoscd'

@description('Resource group of the Container Apps and Jobs SynosCD reconciles (same subscription).')
param targetResourceGroupName string = resourceGroup().name

@description('Name of the existing Container Apps environment, in the target resource group.')
param containerAppEnvironmentName string

@description('More targets of the fleet (docs/fleet.md): objects {name, subscriptionId?, resourceGroup, environment, path, overrides?}. Each gets the target roles on its resource group (subscriptionId defaults to this one); list the targets the ops repository declares (kind: Target) here too, for their roles. Leave out the default target\'s group (targetResourceGroupName).')
param targets array = []

@description('Declare the targets above in the app settings (SYNOSCD_TARGETS); false when the ops repository declares them (the array then only grants their roles).')
param targetsInAppSettings bool = true

// -- what ----------------------------------------------------------------------------------------

@description('Owner (user or organisation) of the ops repository.')
param githubRepoOwner string

@description('Name of the ops repository.')
param githubRepoName string

@description('Branch SynosCD follows.')
param githubBranch string = 'main'

@description('Folder of the manifests in the ops repository.')
param githubConfigPath string = 'apps'

@description('GitHub API base URL (GitHub Enterprise Server: https://HOST/api/v3).')
param githubApiUrl string = 'https://api.github.com'

// -- secrets (stored in Key Vault; each is written only when given, so later deployments may omit them)

@secure()
@description('GitHub App id (Key Vault secret github-app-id).')
param githubAppId string = ''

@secure()
@description('Installation id of the GitHub App on the ops repository (github-app-installation-id).')
param githubAppInstallationId string = ''

@secure()
@description('GitHub App private key, PEM (github-app-private-key). On the command line: githubAppPrivateKey=@key.pem')
param githubAppPrivateKey string = ''

@secure()
@description('Webhook secret, the same as in the GitHub App settings (github-webhook-secret).')
param githubWebhookSecret string = ''

// -- how -----------------------------------------------------------------------------------------

@description('NCRONTAB schedule of the timer function; it runs a pass only when the interval has passed.')
param timerSchedule string = '0 */1 * * * *'

@description('Default seconds between timer passes (`synos set --interval` overrides it at runtime).')
@minValue(10)
param reconcileIntervalSeconds int = 300

@description('Default for deleting managed apps that left Git (`synos set --prune` overrides it).')
param pruneEnabled bool = false

@description('Apps never written or deleted, comma-separated (`synos set --protected-apps` overrides it).')
param protectedAppsCsv string = 'synoscd-operator'

@description('Concurrent ARM writes per pass (`synos set --max-concurrent` overrides it).')
@minValue(1)
@maxValue(64)
param maxConcurrent int = 8

@description('Name of the state table (one per reconciled environment).')
param stateTableName string = 'synoscd'

// -- scale and cost --------------------------------------------------------------------------------

@description('Always-ready instances for the HTTP functions (the webhook). 0: scale to zero; the first webhook after idle waits for a cold start, and if that outlasts GitHub\'s 10-second delivery timeout the next timer pass applies the push. 1: no cold start for the webhook, billed around the clock.')
@minValue(0)
@maxValue(10)
param alwaysReadyInstances int = 0

@description('Upper bound of instances (passes are serialised by SynosCD\'s lease; this bounds webhook bursts). Flex Consumption accepts 40 to 1000.')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Memory per instance, MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('E-mail addresses that receive SynosCD\'s alerts (no successful pass, failed passes, prune blocked, webhook signature failures).')
param alertEmails array = []

@secure()
@description('Optional webhook that receives the alerts (Azure Monitor common alert schema).')
param alertWebhookUrl string = ''

@description('Days Log Analytics keeps logs.')
@minValue(30)
@maxValue(730)
param logRetentionDays int = 30

// -- access ----------------------------------------------------------------------------------------

@description('Optional object id of a user or group that runs `synos` from a workstation: state table, Reader on the target group, and read access to the Key Vault secrets listed in operatorSecretNames only.')
param operatorPrincipalId string = ''

@description('Key Vault secrets the operator may read, each granted on that secret alone (none by default: `synos` from a workstation reads a local clone of the ops repository). The GitHub App private key and the webhook secret are never among them.')
@allowed([
  'github-app-id'
  'github-app-installation-id'
])
param operatorSecretNames array = []

@description('Type of operatorPrincipalId.')
@allowed([
  'User'
  'Group'
  'ServicePrincipal'
])
param operatorPrincipalType string = 'User'

@description('Also let operatorPrincipalId write apps and jobs in the target group (Container Apps Contributor and Container Apps Jobs Contributor), for `synos restore` and `synos sync --force-prune` from a workstation. Off: the operator reads live state only.')
param operatorWriteAccess bool = false

@description('Grant Managed Identity Operator on the target group, for manifests that attach user-assigned identities.')
param grantManagedIdentityOperator bool = false

@description('Key Vault purge protection (recommended; once on it cannot be turned off).')
param enablePurgeProtection bool = true

@description('Key Vault create mode. A vault deleted with its resource group stays soft-deleted for 90 days under the same name: redeploying then fails with "already exists in deleted state" unless you recover it (\'recover\': the vault comes back with its secrets) or pick another name (keyVaultNameSuffix).')
@allowed([
  'default'
  'recover'
])
param keyVaultCreateMode string = 'default'

@description('Mixed into the Key Vault name: change it to deploy a new vault beside a soft-deleted one of the same group.')
@maxLength(12)
param keyVaultNameSuffix string = ''

// -- network -----------------------------------------------------------------------------------------

@description('Public network access of the storage account and the Key Vault. Disable it only with private endpoints (privateEndpointSubnetId) and the Function App in the virtual network (functionSubnetId); the webhook endpoint itself stays public for GitHub.')
@allowed([
  'Enabled'
  'Disabled'
])
param publicNetworkAccess string = 'Enabled'

@description('Optional subnet id for private endpoints of the storage account (blob, queue, table) and the Key Vault, with private DNS zones linked to its virtual network.')
param privateEndpointSubnetId string = ''

@description('Optional subnet id the Function App joins (VNet integration; delegated to Microsoft.App/environments), so it reaches the private endpoints.')
param functionSubnetId string = ''

@description('Name of the Storage Queue the webhook puts accepted pushes on (its poison queue is NAME-poison).')
@minLength(3)
@maxLength(56)
param queueName string = 'synoscd-passes'

param tags object = {}

@description('Dashboard (/api/ui) and JSON API (/api/v1) sign-in with Entra ID: the client ID of the app registration. Empty: both are off.')
param dashboardClientId string = ''

@description('Directory (tenant) ID of the dashboard\'s app registration.')
param dashboardTenantId string = subscription().tenantId

@description('Name of an app setting with the app registration\'s client secret (Key Vault reference); empty: ID tokens, no secret.')
param dashboardClientSecretSettingName string = ''

@description('What an unauthenticated dashboard request gets.')
@allowed([
  'RedirectToLoginPage'
  'Return401'
])
param dashboardUnauthenticatedAction string = 'RedirectToLoginPage'

// -- names ------------------------------------------------------------------------------------------

var suffix = uniqueString(resourceGroup().id, namePrefix)
var storageAccountName = take(toLower('${namePrefix}${suffix}'), 24)
// The Key Vault name is recover-aware rather than random: the same inputs give the same name, so a
// redeployment finds its vault (or recovers it with keyVaultCreateMode='recover'); keyVaultNameSuffix
// moves to a new name when the old one is held by a soft-deleted vault.
var vaultName = take('${namePrefix}-kv-${uniqueString(resourceGroup().id, namePrefix, keyVaultNameSuffix)}', 24)
var functionAppName = '${namePrefix}-func-${suffix}'
var deploymentContainerName = 'app-package'

// -- resources --------------------------------------------------------------------------------------

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: '${namePrefix}-id-${suffix}'
  location: location
  tags: tags
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'synoscd-monitoring'
  params: {
    location: location
    workspaceName: '${namePrefix}-log-${suffix}'
    appInsightsName: '${namePrefix}-appi-${suffix}'
    retentionInDays: logRetentionDays
    principalId: identity.properties.principalId
    tags: tags
  }
}

module alerts 'modules/alerts.bicep' = {
  name: 'synoscd-alerts'
  params: {
    location: location
    namePrefix: namePrefix
    workspaceId: monitoring.outputs.workspaceId
    reconcileIntervalSeconds: reconcileIntervalSeconds
    alertEmails: alertEmails
    alertWebhookUrl: alertWebhookUrl
    tags: tags
  }
}

module storage 'modules/storage.bicep' = {
  name: 'synoscd-storage'
  params: {
    location: location
    accountName: storageAccountName
    deploymentContainerName: deploymentContainerName
    stateTableName: stateTableName
    queueName: queueName
    publicNetworkAccess: publicNetworkAccess
    principalId: identity.properties.principalId
    operatorPrincipalId: operatorPrincipalId
    operatorPrincipalType: operatorPrincipalType
    tags: tags
  }
}

module vault 'modules/keyvault.bicep' = {
  name: 'synoscd-keyvault'
  params: {
    location: location
    vaultName: vaultName
    enablePurgeProtection: enablePurgeProtection
    createMode: keyVaultCreateMode
    publicNetworkAccess: publicNetworkAccess
    principalId: identity.properties.principalId
    operatorPrincipalId: operatorPrincipalId
    operatorPrincipalType: operatorPrincipalType
    operatorSecretNames: operatorSecretNames
    githubAppId: githubAppId
    githubAppInstallationId: githubAppInstallationId
    githubAppPrivateKey: githubAppPrivateKey
    githubWebhookSecret: githubWebhookSecret
    tags: tags
  }
}

module targetAccess 'modules/target-access.bicep' = {
  name: 'synoscd-target-access'
  scope: resourceGroup(targetResourceGroupName)
  params: {
    principalId: identity.properties.principalId
    containerAppEnvironmentName: containerAppEnvironmentName
    grantManagedIdentityOperator: grantManagedIdentityOperator
    operatorPrincipalId: operatorPrincipalId
    operatorPrincipalType: operatorPrincipalType
    operatorWriteAccess: operatorWriteAccess
  }
}

// The same roles on every other target's group, in whatever subscription it lives.
module fleetAccess 'modules/target-access.bicep' = [for target in targets: {
  name: 'synoscd-target-access-${target.name}'
  scope: resourceGroup(target.?subscriptionId ?? subscription().subscriptionId, target.resourceGroup)
  params: {
    principalId: identity.properties.principalId
    containerAppEnvironmentName: target.environment
    grantManagedIdentityOperator: grantManagedIdentityOperator
    operatorPrincipalId: operatorPrincipalId
    operatorPrincipalType: operatorPrincipalType
    operatorWriteAccess: operatorWriteAccess
  }
}]

// SYNOSCD_TARGETS: the array as the code reads it (subscriptionId filled in).
var declaredTargets = [for target in targets: union({ subscriptionId: subscription().subscriptionId }, target)]

module functionApp 'modules/functionapp.bicep' = {
  name: 'synoscd-functionapp'
  params: {
    location: location
    planName: '${namePrefix}-plan-${suffix}'
    appName: functionAppName
    tags: tags
    identityId: identity.id
    identityClientId: identity.properties.clientId
    storageAccountName: storage.outputs.name
    deploymentContainerUrl: storage.outputs.deploymentContainerUrl
    stateStore: storage.outputs.tableEndpoint
    synthBlobStore: storage.outputs.blobEndpoint
    stateTableName: stateTableName
    queueName: queueName
    functionSubnetId: functionSubnetId
    appInsightsConnectionString: monitoring.outputs.connectionString
    keyVaultUrl: vault.outputs.url
    webhookSecretUri: vault.outputs.webhookSecretUri
    targetSubscriptionId: subscription().subscriptionId
    targetResourceGroupName: targetResourceGroupName
    containerAppEnvironmentName: containerAppEnvironmentName
    githubRepoOwner: githubRepoOwner
    githubRepoName: githubRepoName
    githubBranch: githubBranch
    githubConfigPath: githubConfigPath
    githubApiUrl: githubApiUrl
    timerSchedule: timerSchedule
    reconcileIntervalSeconds: reconcileIntervalSeconds
    pruneEnabled: pruneEnabled
    protectedAppsCsv: protectedAppsCsv
    maxConcurrent: maxConcurrent
    alwaysReadyInstances: alwaysReadyInstances
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
    dashboardAuth: empty(dashboardClientId) ? 'off' : 'easyauth'
    targetsJson: targetsInAppSettings && !empty(targets) ? string(declaredTargets) : ''
  }
  // The app starts with its roles in place: storage for the host, the vault for the Key Vault
  // reference, the target groups for the first passes.
  dependsOn: [
    targetAccess
    fleetAccess
  ]
}

module privateEndpoints 'modules/private-endpoints.bicep' = if (!empty(privateEndpointSubnetId)) {
  name: 'synoscd-private-endpoints'
  params: {
    location: location
    namePrefix: namePrefix
    subnetId: privateEndpointSubnetId
    storageAccountId: storage.outputs.id
    vaultId: vault.outputs.id
    tags: tags
  }
}

// Easy Auth in front of the dashboard and the JSON API; the webhook and health stay anonymous.
module auth 'modules/auth.bicep' = if (!empty(dashboardClientId)) {
  name: 'synoscd-auth'
  params: {
    appName: functionApp.outputs.name
    clientId: dashboardClientId
    tenantId: dashboardTenantId
    clientSecretSettingName: dashboardClientSecretSettingName
    unauthenticatedClientAction: dashboardUnauthenticatedAction
  }
}

// -- outputs ----------------------------------------------------------------------------------------

output functionAppName string = functionApp.outputs.name
output functionBaseUrl string = 'https://${functionApp.outputs.defaultHostName}'
@description('Payload URL of the GitHub App webhook.')
output webhookUrl string = 'https://${functionApp.outputs.defaultHostName}/api/github/webhook'
output healthUrl string = 'https://${functionApp.outputs.defaultHostName}/api/health'
output identityClientId string = identity.properties.clientId
output identityPrincipalId string = identity.properties.principalId
output keyVaultName string = vault.outputs.name
output keyVaultUrl string = vault.outputs.url
output storageAccountName string = storage.outputs.name
output appInsightsName string = monitoring.outputs.appInsightsName
output stateStore string = storage.outputs.tableEndpoint
output stateTable string = stateTableName
output targetResourceGroup string = targetResourceGroupName
output containerAppEnvironmentId string = targetAccess.outputs.environmentId
output containerAppEnvironmentDomain string = targetAccess.outputs.environmentDefaultDomain
@description('The dashboard, behind Entra ID sign-in (empty when dashboardClientId is not set).')
output dashboardUrl string = empty(dashboardClientId) ? '' : 'https://${functionApp.outputs.defaultHostName}/api/ui/'
