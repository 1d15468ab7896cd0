// Private endpoints for the storage account (blob, queue, table) and the Key Vault in one subnet, with
// the private DNS zones that make their usual names resolve to the private addresses inside the
// subnet's virtual network. Deployed when main.bicep's privateEndpointSubnetId is set; then
// publicNetworkAccess 'Disabled' closes the public endpoints (the Function App reaches the private
// ones through VNet integration, functionSubnetId).

param location string
param namePrefix string
@description('Subnet of the private endpoints (/subscriptions/.../virtualNetworks/VNET/subnets/SUBNET).')
param subnetId string
param storageAccountId string
param vaultId string
param tags object

var vnetId = split(subnetId, '/subnets/')[0]
var endpoints = [
  {
    name: 'blob'
    target: storageAccountId
    zone: 'privatelink.blob.${environment().suffixes.storage}'
  }
  {
    name: 'queue'
    target: storageAccountId
    zone: 'privatelink.queue.${environment().suffixes.storage}'
  }
  {
    name: 'table'
    target: storageAccountId
    zone: 'privatelink.table.${environment().suffixes.storage}'
  }
  {
    name: 'vault'
    target: vaultId
    zone: 'privatelink.vaultcore.azure.net'
  }
]

resource zones 'Microsoft.Network/privateDnsZones@2020-06-01' = [
  for e in endpoints: {
    name: e.zone
    location: 'global'
    tags: tags
  }
]

resource links 'Microsoft.Network/privateDnsZones/virtualNetworkLinks@2020-06-01' = [
  for (e, i) in endpoints: {
    parent: zones[i]
    name: '${namePrefix}-${e.name}'
    location: 'global'
    tags: tags
    properties: {
      registrationEnabled: false
      virtualNetwork: {
        id: vnetId
      }
    }
  }
]

resource privateEndpoints 'Microsoft.Network/privateEndpoints@2023-11-01' = [
  for e in endpoints: {
    name: '${namePrefix}-pe-${e.name}'
    location: location
    tags: tags
    properties: {
      subnet: {
        id: subnetId
      }
      privateLinkServiceConnections: [
        {
          name: '${namePrefix}-pe-${e.name}'
          properties: {
            privateLinkServiceId: e.target
            groupIds: [
              e.name
            ]
          }
        }
      ]
    }
  }
]

resource zoneGroups 'Microsoft.Network/privateEndpoints/privateDnsZoneGroups@2023-11-01' = [
  for (e, i) in endpoints: {
    parent: privateEndpoints[i]
    name: 'default'
    properties: {
      privateDnsZoneConfigs: [
        {
          name: e.name
          properties: {
            privateDnsZoneId: zones[i].id
          }
        }
      ]
    }
  }
]
