"""The Key Vault stand-in through the real SecretClient: challenge authentication, versions, 404."""

from __future__ import annotations

import pytest
import requests
from azure.core.exceptions import ResourceNotFoundError
from azure.identity import DefaultAzureCredential
from azure.keyvault.secrets import SecretClient

from tests.conftest import LaunchedStack

pytestmark = pytest.mark.integration


@pytest.fixture
def vault(stack: LaunchedStack) -> SecretClient:
    # A 127.0.0.1 vault cannot pass the SDK's check that the challenge resource matches the vault's domain.
    return SecretClient(
        stack.env["SYNOSCD_KEYVAULT_URL"], DefaultAzureCredential(), verify_challenge_resource=False
    )


def test_seeded_github_app_secrets_read_through_the_challenge(
    vault: SecretClient, stack: LaunchedStack
) -> None:
    assert vault.get_secret("github-app-id").value == stack.env["SYNOSCD_GITHUB_APP_ID"]
    assert vault.get_secret("github-app-private-key").value.startswith("-----BEGIN RSA PRIVATE KEY-----")
    assert vault.get_secret("github-webhook-secret").value == stack.env["SYNOSCD_GITHUB_WEBHOOK_SECRET"]


def test_first_request_is_challenged_with_www_authenticate(stack: LaunchedStack) -> None:
    resp = requests.get(
        f"{stack.env['SYNOSCD_KEYVAULT_URL']}/secrets/github-app-id/?api-version=7.5",
        verify=stack.env["REQUESTS_CA_BUNDLE"],
        timeout=10,
    )
    assert resp.status_code == 401
    challenge = resp.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer authorization="https://login.microsoftonline.com/')
    assert 'resource="https://vault.azure.net"' in challenge


def test_set_then_get_latest_and_by_version(vault: SecretClient) -> None:
    first = vault.set_secret("rotating", "v1")
    second = vault.set_secret("rotating", "v2")
    assert first.properties.version != second.properties.version
    assert vault.get_secret("rotating").value == "v2"
    assert vault.get_secret("rotating", version=first.properties.version).value == "v1"
    versions = {p.version for p in vault.list_properties_of_secret_versions("rotating")}
    assert versions == {first.properties.version, second.properties.version}


def test_missing_secret_is_secret_not_found(vault: SecretClient) -> None:
    with pytest.raises(ResourceNotFoundError) as err:
        vault.get_secret("does-not-exist")
    assert err.value.error.code == "SecretNotFound"
