// Key Vault in RBAC mode with the GitHub App secrets. The functions read github-app-id,
// github-app-installation-id and github-app-private-key through the SDK (SYNOSCD_KEYVAULT_URL) and
// the webhook secret through a Key Vault reference app setting, both as the user-assigned identity.

import { builtInRoles } from 'roles.bicep'

param location string
param vaultName string
param enablePurgeProtection bool
@description('default, or recover: bring back the soft-deleted vault of the same name with its secrets.')
param createMode string
@description('Enabled, or Disabled once a private endpoint reaches the vault.')
param publicNetworkAccess string
@description('Principal id of the user-assigned identity SynosCD runs as.')
param principalId string
param operatorPrincipalId string
param operatorPrincipalType string
@description('The secrets the operator may read, each granted on that secret alone (never the private key).')
param operatorSecretNames array
param tags object

// Each secret is written only when a value is given, so a later deployment without the values keeps
// the versions already in the vault (rotate by passing a new value, or with `az keyvault secret set`).
@secure()
param githubAppId string
@secure()
param githubAppInstallationId string
@secure()
param githubAppPrivateKey string
@secure()
param githubWebhookSecret string

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: vaultName
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    // Soft delete is always on (90 days): a vault deleted with its group keeps its name until purged
    // (never, with purge protection); redeploy with createMode 'recover' or another name.
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: enablePurgeProtection ? true : null
    createMode: createMode
    publicNetworkAccess: publicNetworkAccess
    networkAcls: {
      defaultAction: publicNetworkAccess == 'Enabled' ? 'Allow' : 'Deny'
      bypass: 'None'
    }
  }

  resource appId 'secrets' = if (!empty(githubAppId)) {
    name: 'github-app-id'
    properties: {
      value: githubAppId
      contentType: 'text/plain'
    }
  }

  resource installationId 'secrets' = if (!empty(githubAppInstallationId)) {
    name: 'github-app-installation-id'
    properties: {
      value: githubAppInstallationId
      contentType: 'text/plain'
    }
  }

  resource privateKey 'secrets' = if (!empty(githubAppPrivateKey)) {
    name: 'github-app-private-key'
    properties: {
      value: githubAppPrivateKey
      contentType: 'application/x-pem-file'
    }
  }

  resource webhookSecret 'secrets' = if (!empty(githubWebhookSecret)) {
    name: 'github-webhook-secret'
    properties: {
      value: githubWebhookSecret
      contentType: 'text/plain'
    }
  }
}

// Read secret values; nothing else (no list of other vaults, no writes).
resource secretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, principalId, builtInRoles.keyVaultSecretsUser)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', builtInRoles.keyVaultSecretsUser)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// An operator reads only the secrets named in operatorSecretNames, each on that secret alone (never
// the vault: the GitHub App private key and the webhook secret stay with SynosCD's identity).
resource operatorSecrets 'Microsoft.KeyVault/vaults/secrets@2023-07-01' existing = [
  for name in operatorSecretNames: {
    parent: vault
    name: name
  }
]

resource operatorSecretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for (name, i) in (empty(operatorPrincipalId) ? [] : operatorSecretNames): {
    name: guid(vault.id, name, operatorPrincipalId, builtInRoles.keyVaultSecretsUser)
    scope: operatorSecrets[i]
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', builtInRoles.keyVaultSecretsUser)
      principalId: operatorPrincipalId
      principalType: operatorPrincipalType
    }
  }
]

output name string = vault.name
output id string = vault.id
// The code strips the trailing slash of vaultUri.
output url string = vault.properties.vaultUri
// Versionless: the platform resolves the latest version (on restart, or within a day).
output webhookSecretUri string = '${vault.properties.vaultUri}secrets/github-webhook-secret'
