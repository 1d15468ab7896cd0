// Example parameters for infra/main.bicep. Copy it, set the values of your environment, and deploy:
//
//   az deployment group create -g synoscd-rg -f infra/main.bicep -p infra/main.bicepparam \
//     -p githubAppId=123456 githubAppInstallationId=7890123 \
//        githubAppPrivateKey=@synoscd.private-key.pem githubWebhookSecret=@webhook-secret.txt
//
// Secrets never go into this file. Pass them on the command line as above, or export them before the
// deployment (GITHUB_APP_ID, GITHUB_APP_INSTALLATION_ID, GITHUB_APP_PRIVATE_KEY, GITHUB_WEBHOOK_SECRET):
// the readEnvironmentVariable() defaults below pick them up. Empty values leave the vault's secrets as
// they are, so later deployments need none of them.

using './main.bicep'

// The environment SynosCD keeps equal to Git, and its resource group (same subscription).
param targetResourceGroupName = 'apps-rg'
param containerAppEnvironmentName = 'apps-env'

// The ops repository.
param githubRepoOwner = 'contoso'
param githubRepoName = 'ops'
param githubBranch = 'main'
param githubConfigPath = 'apps'

// Runtime defaults; `synos set` changes them later without a deployment.
param reconcileIntervalSeconds = 300
param pruneEnabled = false
param protectedAppsCsv = 'synoscd-operator'

// 0 scales to zero (cheapest); 1 keeps one instance warm so the webhook never waits for a cold start.
param alwaysReadyInstances = 0

// Optional: your own object id (az ad signed-in-user show --query id -o tsv) to run `synos` locally.
param operatorPrincipalId = ''
// true: that operator may also write apps and jobs (synos restore, synos sync --force-prune).
param operatorWriteAccess = false

param githubAppId = readEnvironmentVariable('GITHUB_APP_ID', '')
param githubAppInstallationId = readEnvironmentVariable('GITHUB_APP_INSTALLATION_ID', '')
param githubAppPrivateKey = readEnvironmentVariable('GITHUB_APP_PRIVATE_KEY', '')
param githubWebhookSecret = readEnvironmentVariable('GITHUB_WEBHOOK_SECRET', '')

param tags = {
  app: 'synoscd'
}
