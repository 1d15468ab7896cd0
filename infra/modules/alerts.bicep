// Azure Monitor alerts on SynosCD's telemetry, and the action group that receives them (e-mail and/or a
// webhook, common alert schema). Log search alerts over the Log Analytics workspace behind Application
// Insights: AppMetrics holds the OpenTelemetry metrics SynosCD records (docs/telemetry.md), AppRequests
// the Functions host's request log.
//
//   no successful pass     dead man's switch: no synoscd.passes{outcome=succeeded} for 3 x the interval
//   failed passes          synoscd.passes{outcome=failed|error} in the last 15 minutes
//   prune blocked          synoscd.prune.blocked in the last 15 minutes
//   webhook signature      more than webhookFailureThreshold 401 answers of github_webhook in 15 minutes

param location string
param namePrefix string

@description('Resource id of the Log Analytics workspace of SynosCD\'s Application Insights.')
param workspaceId string

@description('Seconds between timer passes: the dead man\'s switch fires after 3 x this without a successful pass.')
param reconcileIntervalSeconds int

@description('E-mail addresses that receive the alerts.')
param alertEmails array = []

@secure()
@description('Optional webhook that receives the alerts (common alert schema).')
param alertWebhookUrl string = ''

@description('Webhook deliveries rejected for their signature (401) in 15 minutes that raise an alert.')
param webhookFailureThreshold int = 20

param tags object = {}

// Log search alerts accept only these windows: the smallest one covering 3 x the interval, and the
// query itself looks back exactly 3 x the interval.
var deadManSeconds = 3 * reconcileIntervalSeconds
var deadManMinutes = (deadManSeconds + 59) / 60
var deadManWindow = deadManMinutes <= 5
  ? 'PT5M'
  : deadManMinutes <= 10
      ? 'PT10M'
      : deadManMinutes <= 15
          ? 'PT15M'
          : deadManMinutes <= 30
              ? 'PT30M'
              : deadManMinutes <= 60 ? 'PT1H' : deadManMinutes <= 360 ? 'PT6H' : deadManMinutes <= 1440 ? 'P1D' : 'P2D'

var emailReceivers = [
  for (address, i) in alertEmails: {
    name: 'email-${i}'
    emailAddress: address
    useCommonAlertSchema: true
  }
]
var webhookReceivers = empty(alertWebhookUrl)
  ? []
  : [
      {
        name: 'webhook'
        serviceUri: alertWebhookUrl
        useCommonAlertSchema: true
      }
    ]

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = {
  name: '${namePrefix}-alerts'
  location: 'global'
  tags: tags
  properties: {
    groupShortName: take('${namePrefix}cd', 12)
    enabled: true
    emailReceivers: emailReceivers
    webhookReceivers: webhookReceivers
  }
}

resource noSuccessfulPass 'Microsoft.Insights/scheduledQueryRules@2023-03-15-preview' = {
  name: '${namePrefix}-no-successful-pass'
  location: location
  tags: tags
  properties: {
    displayName: 'SynosCD: no successful pass for 3 x the interval'
    description: 'Dead man\'s switch: no reconcile pass succeeded in the last ${deadManSeconds} seconds (3 x the interval). The timer may not run, every pass may fail, or telemetry stopped.'
    severity: 1
    enabled: true
    scopes: [
      workspaceId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: deadManWindow
    criteria: {
      allOf: [
        {
          query: 'AppMetrics | where TimeGenerated > ago(${deadManSeconds}s) | where Name == "synoscd.passes" | where tostring(Properties.outcome) == "succeeded"'
          timeAggregation: 'Count'
          operator: 'LessThan'
          threshold: 1
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: [
        actionGroup.id
      ]
    }
  }
}

resource failedPasses 'Microsoft.Insights/scheduledQueryRules@2023-03-15-preview' = {
  name: '${namePrefix}-failed-passes'
  location: location
  tags: tags
  properties: {
    displayName: 'SynosCD: failed passes'
    description: 'A reconcile pass failed (a write or hook failed, or the revision\'s sync failed). synos history and synos get events say which.'
    severity: 2
    enabled: true
    scopes: [
      workspaceId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      allOf: [
        {
          query: 'AppMetrics | where Name == "synoscd.passes" | where tostring(Properties.outcome) in ("failed", "error") | summarize Failed = sum(Sum)'
          timeAggregation: 'Total'
          metricMeasureColumn: 'Failed'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: [
        actionGroup.id
      ]
    }
  }
}

resource pruneBlocked 'Microsoft.Insights/scheduledQueryRules@2023-03-15-preview' = {
  name: '${namePrefix}-prune-blocked'
  location: location
  tags: tags
  properties: {
    displayName: 'SynosCD: prune blocked'
    description: 'A pass held back a prune (incomplete desired state, an empty set, or too large a share). synos get events shows the reason.'
    severity: 3
    enabled: true
    scopes: [
      workspaceId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      allOf: [
        {
          query: 'AppMetrics | where Name == "synoscd.prune.blocked" | summarize Blocked = sum(Sum)'
          timeAggregation: 'Total'
          metricMeasureColumn: 'Blocked'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: [
        actionGroup.id
      ]
    }
  }
}

resource webhookSignatureFailures 'Microsoft.Insights/scheduledQueryRules@2023-03-15-preview' = {
  name: '${namePrefix}-webhook-signature-failures'
  location: location
  tags: tags
  properties: {
    displayName: 'SynosCD: webhook signature failures'
    description: 'Many webhook deliveries were rejected for their signature: the secret differs between the GitHub App and Key Vault, or someone is probing the endpoint.'
    severity: 2
    enabled: true
    scopes: [
      workspaceId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      allOf: [
        {
          query: 'AppRequests | where Name == "github_webhook" | where ResultCode == "401"'
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: webhookFailureThreshold
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: [
        actionGroup.id
      ]
    }
  }
}

output actionGroupId string = actionGroup.id
