// Built-in Azure role definition ids SynosCD assigns, in one place. Ids are the same in every
// tenant and cloud; tests/unit/test_infra.py checks each value and that each is assigned.

@export()
@description('Built-in role definition ids (Azure built-in roles reference).')
var builtInRoles = {
  // Microsoft.App/containerApps/* and Microsoft.App/managedEnvironments/join/action (+ read):
  // create, update, delete and restart container apps in an environment of the same scope.
  containerAppsContributor: '358470bc-b998-42bd-ab17-a7e34c199c0f'
  // Microsoft.App/jobs/*: create, update, delete and start Container Apps jobs.
  containerAppsJobsContributor: '4e3d2b60-56ae-4dc6-a233-09c8e5a82e68'
  // Read secret contents (Key Vault in RBAC mode).
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6'
  // Functions runtime: host keys, timer and singleton locks, the deployment package container.
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  // The webhook's queue: send (webhook), receive and delete (queue trigger), poison queue (host).
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  // SynosCD's state table (settings, flags, status, history, lease, blob cache).
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  // Publish telemetry to Application Insights with an Entra token (local auth is off).
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
  // Optional: assign user-assigned identities named in manifests (spec.identity, registries).
  managedIdentityOperator: 'f1a07417-d97a-45cb-824c-7a7467783830'
  // Optional, for a human operator running `synos` against the live environment: read only.
  reader: 'acdd72a7-3385-48ef-bd42-f606fba81ae7'
}
