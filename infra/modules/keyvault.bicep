// Key Vault in RBAC mode with the GitHub App secrets. The functions read github-app-id,
// github-app-installation-id and github-app-private-key through the SDK (SYNOSCD_KEYVAULT_URL) and
// the webhook secret through a Key Vault reference app setting, both as the user-assigned identity.

import { builtInRoles } from 'roles.bicep'

param location string
param vaultName string
param enablePurgeProtection bool
@description('Principal id of the user-assigned identity SynosCD runs as.')
param principalId string
param operatorPrincipalId string
param operatorPrincipalType string
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
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: enablePurgeProtection ? true : null
    publicNetworkAccess: 'Enabled'
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

// `synos diff` / `synos sync` from a workstation read the GitHub App secrets too.
resource operatorSecretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(operatorPrincipalId)) {
  name: guid(vault.id, operatorPrincipalId, builtInRoles.keyVaultSecretsUser)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', builtInRoles.keyVaultSecretsUser)
    principalId: operatorPrincipalId
    principalType: operatorPrincipalType
  }
}

output name string = vault.name
// The code strips the trailing slash of vaultUri.
output url string = vault.properties.vaultUri
// Versionless: the platform resolves the latest version (on restart, or within a day).
output webhookSecretUri string = '${vault.properties.vaultUri}secrets/github-webhook-secret'
