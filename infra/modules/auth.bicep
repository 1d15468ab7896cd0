// App Service Authentication (Easy Auth) with Microsoft Entra ID in front of the dashboard (/api/ui)
// and its JSON API (/api/v1). Every route needs a signed-in user except the GitHub webhook (its
// HMAC signature is its authentication) and the health probe, which stay as they are. Easy Auth
// strips X-MS-CLIENT-PRINCIPAL-* headers a client sends and sets its own; synoscd/ui/auth.py serves
// only requests that carry them (SYNOSCD_UI_AUTH=easyauth, set by functionapp.bicep).

@description('Name of the Function App.')
param appName string

@description('Application (client) ID of the Entra ID app registration users sign in with. Its redirect URI is https://HOST/.auth/login/aad/callback.')
param clientId string

@description('Directory (tenant) ID of the app registration.')
param tenantId string

@description('Name of an app setting holding the app registration\'s client secret (a Key Vault reference). Empty: no secret; the app registration must then issue ID tokens (implicit grant).')
param clientSecretSettingName string = ''

@description('What a request without a signed-in user gets: a redirect to the sign-in page, or 401.')
@allowed([
  'RedirectToLoginPage'
  'Return401'
])
param unauthenticatedClientAction string = 'RedirectToLoginPage'

@description('Routes served without sign-in: the webhook and the health probe, exactly as before.')
param excludedPaths array = [
  '/api/github/webhook'
  '/api/health'
]

resource site 'Microsoft.Web/sites@2024-04-01' existing = {
  name: appName
}

resource authSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: site
  name: 'authsettingsV2'
  properties: {
    platform: {
      enabled: true
    }
    globalValidation: {
      requireAuthentication: true
      unauthenticatedClientAction: unauthenticatedClientAction
      redirectToProvider: 'azureactivedirectory'
      excludedPaths: excludedPaths
    }
    httpSettings: {
      requireHttps: true
    }
    identityProviders: {
      azureActiveDirectory: {
        enabled: true
        registration: {
          clientId: clientId
          clientSecretSettingName: empty(clientSecretSettingName) ? null : clientSecretSettingName
          openIdIssuer: '${environment().authentication.loginEndpoint}${tenantId}/v2.0'
        }
        validation: {
          allowedAudiences: [
            'api://${clientId}'
            clientId
          ]
        }
      }
    }
    login: {
      tokenStore: {
        enabled: true
      }
    }
  }
}

output dashboardPath string = '/api/ui/'
