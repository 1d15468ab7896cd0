// One storage account for the Functions runtime (AzureWebJobsStorage, the deployment package) and
// SynosCD's state table. Shared keys are off: everything reaches it with Microsoft Entra identities.

import { builtInRoles } from 'roles.bicep'

param location string
param accountName string
param deploymentContainerName string
param stateTableName string
@description('Principal id of the user-assigned identity SynosCD runs as.')
param principalId string
@description('Optional principal (user or group object id) that runs `synos` from a workstation.')
param operatorPrincipalId string
param operatorPrincipalType string
param tags object

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: accountName
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    allowBlobPublicAccess: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
  }

  resource blobs 'blobServices' = {
    name: 'default'

    resource deployment 'containers' = {
      name: deploymentContainerName
      properties: {
        publicAccess: 'None'
      }
    }
  }

  resource tables 'tableServices' = {
    name: 'default'

    resource state 'tables' = {
      name: stateTableName
    }
  }
}

// The runtime needs blob (owner: it manages leases and host keys), queue and table access; the state
// store needs table access. Scoped to this account only.
resource runtimeRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for roleId in [
    builtInRoles.storageBlobDataOwner
    builtInRoles.storageQueueDataContributor
    builtInRoles.storageTableDataContributor
  ]: {
    name: guid(account.id, principalId, roleId)
    scope: account
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleId)
      principalId: principalId
      principalType: 'ServicePrincipal'
    }
  }
]

// `synos get/set/suspend/history` from a workstation read and write the same state table.
resource operatorTableRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(operatorPrincipalId)) {
  name: guid(account.id, operatorPrincipalId, builtInRoles.storageTableDataContributor)
  scope: account
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', builtInRoles.storageTableDataContributor)
    principalId: operatorPrincipalId
    principalType: operatorPrincipalType
  }
}

output name string = account.name
output blobEndpoint string = account.properties.primaryEndpoints.blob
output tableEndpoint string = 'https://${account.name}.table.${environment().suffixes.storage}'
output deploymentContainerUrl string = '${account.properties.primaryEndpoints.blob}${deploymentContainerName}'
