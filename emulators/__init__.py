"""Local stand-ins for the services SynosCD talks to: ARM Microsoft.App (with a managed-identity
token endpoint), Key Vault secrets and the GitHub REST API, plus a launcher that also starts Azurite.

They are development and test tools: they ship in the repository, not in the `synoscd` package.
"""
