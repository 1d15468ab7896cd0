// What SynosCD's identity may do in the resource group it reconciles (deployed with
// scope: resourceGroup(targetResourceGroupName), so that group may differ from SynosCD's own).
//
// Container Apps Contributor holds Microsoft.App/containerApps/* plus
// Microsoft.App/managedEnvironments/join/action and read; Container Apps Jobs Contributor holds
// Microsoft.App/jobs/*. Assigned on the group, they let the identity create, update, delete and start
// apps and jobs in that group, joined to an environment in that group - which is where SynosCD looks
// for it (SYNOSCD_AZURE_CONTAINER_APP_ENVIRONMENT names an environment in SYNOSCD_AZURE_RESOURCE_GROUP).
// Nothing outside Microsoft.App is granted: not the group's other resources, not role assignments.

import { builtInRoles } from 'roles.bicep'

@description('Principal id of the user-assigned identity SynosCD runs as.')
param principalId string
@description('Name of the existing Container Apps environment in this resource group.')
param containerAppEnvironmentName string
@description('Also grant Managed Identity Operator here, for manifests that attach user-assigned identities of this group.')
param grantManagedIdentityOperator bool
param operatorPrincipalId string
param operatorPrincipalType string
@description('Also let the operator write apps and jobs here (synos restore, synos sync --force-prune).')
param operatorWriteAccess bool = false

// Read during the deployment (its default domain is an output), so a missing environment, or one in
// another group, fails the deployment instead of the first pass.
resource managedEnvironment 'Microsoft.App/managedEnvironments@2024-03-01' existing = {
  name: containerAppEnvironmentName
}

resource appsContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(resourceGroup().id, principalId, builtInRoles.containerAppsContributor)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', builtInRoles.containerAppsContributor)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource jobsContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(resourceGroup().id, principalId, builtInRoles.containerAppsJobsContributor)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', builtInRoles.containerAppsJobsContributor)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// An app or job that names a user-assigned identity (spec.identity, a registry identity) needs
// Microsoft.ManagedIdentity/userAssignedIdentities/assign/action on that identity. Off by default;
// for identities in other groups assign the role there (see docs/operations.md).
resource identityOperator 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (grantManagedIdentityOperator) {
  name: guid(resourceGroup().id, principalId, builtInRoles.managedIdentityOperator)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', builtInRoles.managedIdentityOperator)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// A human operator reads live state (`synos status`, `synos diff`); writes stay with the functions
// unless operatorWriteAccess (below).
resource operatorReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(operatorPrincipalId)) {
  name: guid(resourceGroup().id, operatorPrincipalId, builtInRoles.reader)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', builtInRoles.reader)
    principalId: operatorPrincipalId
    principalType: operatorPrincipalType
  }
}

// Opt-in: an operator who runs `synos restore` or `synos sync --force-prune` writes apps and jobs from a
// workstation, with the same two roles SynosCD's identity holds here.
resource operatorAppsContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(operatorPrincipalId) && operatorWriteAccess) {
  name: guid(resourceGroup().id, operatorPrincipalId, builtInRoles.containerAppsContributor)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', builtInRoles.containerAppsContributor)
    principalId: operatorPrincipalId
    principalType: operatorPrincipalType
  }
}

resource operatorJobsContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(operatorPrincipalId) && operatorWriteAccess) {
  name: guid(resourceGroup().id, operatorPrincipalId, builtInRoles.containerAppsJobsContributor)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', builtInRoles.containerAppsJobsContributor)
    principalId: operatorPrincipalId
    principalType: operatorPrincipalType
  }
}

output environmentId string = managedEnvironment.id
output environmentDefaultDomain string = managedEnvironment.properties.defaultDomain
