// One storage account for the Functions runtime (AzureWebJobsStorage, the deployment package),
// SynosCD's state table and the webhook's queue. Shared keys are off: everything reaches it with
// Microsoft Entra identities. Public network access can be closed (with private endpoints).

import { builtInRoles } from 'roles.bicep'

param location string
param accountName string
param deploymentContainerName string
param stateTableName string
@description('The webhook\'s queue; the Functions host moves a message that keeps failing to NAME-poison.')
param queueName string
@description('Enabled, or Disabled once private endpoints reach the account.')
param publicNetworkAccess string
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
    publicNetworkAccess: publicNetworkAccess
    networkAcls: {
      defaultAction: publicNetworkAccess == 'Enabled' ? 'Allow' : 'Deny'
      bypass: 'None'
    }
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

  // The webhook puts one message per accepted push here; the queue-triggered function runs the pass.
  resource queues 'queueServices' = {
    name: 'default'

    resource passes 'queues' = {
      name: queueName
    }

    resource poison 'queues' = {
      name: '${queueName}-poison'
    }
  }
}

// What the functions use, scoped to this account only: blob (owner: the host manages leases, host keys
// and reads the deployment package), queue (the webhook sends, the queue trigger receives and deletes,
// and moves poison messages) and table (SynosCD's state table).
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
output id string = account.id
output blobEndpoint string = account.properties.primaryEndpoints.blob
output tableEndpoint string = 'https://${account.name}.table.${environment().suffixes.storage}'
output deploymentContainerUrl string = '${account.properties.primaryEndpoints.blob}${deploymentContainerName}'
