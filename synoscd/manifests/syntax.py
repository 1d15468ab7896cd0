"""Pure syntax rules for single values: names, image references, memory, Key Vault references, tags.

Each check returns None when the value is fine, else a message that says what to do. Kept free of
pydantic so the schema, the semantic rules and the renderer can share them.
"""

from __future__ import annotations

import ipaddress
import re
from decimal import Decimal, InvalidOperation

from .errors import show

# --- names -------------------------------------------------------------------------------------

# Container Apps and jobs: 2-32 chars, lowercase letters, digits and '-', letter first, no trailing '-'.
ACA_NAME_PATTERN = r"^(?!.*--)[a-z][a-z0-9-]{0,30}[a-z0-9]$"
_ACA_NAME = re.compile(ACA_NAME_PATTERN)
# Containers, volumes, scale rules: an RFC 1123 label.
LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
_LABEL = re.compile(LABEL_PATTERN)
# ACA secrets: lowercase alphanumerics, '-' or '.', alphanumeric at both ends.
SECRET_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$"
_SECRET_NAME = re.compile(SECRET_NAME_PATTERN)
# Environment variables: letters, digits, '_', '-' and '.', not starting with a digit (what ACA accepts,
# as Kubernetes does: recorded apps have names such as `redis-secret`).
ENV_NAME_PATTERN = r"^[-._A-Za-z][-._A-Za-z0-9]*$"
_ENV_NAME = re.compile(ENV_NAME_PATTERN)


def check_aca_name(value: str) -> str | None:
    if _ACA_NAME.match(value):
        return None
    return (
        f"name {show(value)} is not a valid Container Apps name; use 2-32 lowercase letters, digits and '-', "
        "starting with a letter, ending with a letter or digit, without '--'"
    )


# Targets of a fleet: a DNS-style name, short enough for a table-name suffix and a tag value.
TARGET_NAME_PATTERN = r"^(?!.*--)[a-z][a-z0-9-]{0,30}[a-z0-9]$"
_TARGET_NAME = re.compile(TARGET_NAME_PATTERN)
DEFAULT_TARGET = "default"  # the target of the single-environment settings (SYNOSCD_AZURE_*)
SUBSCRIPTION_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
_SUBSCRIPTION = re.compile(SUBSCRIPTION_PATTERN)
# Resource groups: 1-90 letters, digits, '_', '-', '.', '(' and ')', not ending in '.'.
RESOURCE_GROUP_PATTERN = r"^[-\w.()]{0,89}[-\w()]$"
_RESOURCE_GROUP = re.compile(RESOURCE_GROUP_PATTERN)
# Container Apps environments: 2-60 lowercase letters, digits and '-', letter first, no trailing '-'.
ENVIRONMENT_NAME_PATTERN = r"^(?!.*--)[a-z][a-z0-9-]{0,58}[a-z0-9]$"
_ENVIRONMENT_NAME = re.compile(ENVIRONMENT_NAME_PATTERN)


def check_target_name(value: str) -> str | None:
    if value == DEFAULT_TARGET:
        return (
            f"target name {show(value)} is the target of the app settings (SYNOSCD_AZURE_*); "
            "choose another name"
        )
    if _TARGET_NAME.match(value):
        return None
    return (
        f"target name {show(value)} is invalid; use 2-32 lowercase letters, digits and '-', starting "
        "with a letter, ending with a letter or digit, without '--'"
    )


def check_subscription(value: str) -> str | None:
    if _SUBSCRIPTION.match(value):
        return None
    return (
        f"subscription id {show(value)} is invalid; use the subscription's GUID, "
        "e.g. 00000000-0000-0000-0000-000000000000"
    )


def check_resource_group(value: str) -> str | None:
    if _RESOURCE_GROUP.match(value):
        return None
    return (
        f"resource group {show(value)} is invalid; use 1-90 letters, digits, '_', '-', '.', '(' and ')', "
        "not ending in '.'"
    )


def check_environment_name(value: str) -> str | None:
    if _ENVIRONMENT_NAME.match(value):
        return None
    return (
        f"environment name {show(value)} is not a valid Container Apps environment name; use 2-60 "
        "lowercase letters, digits and '-', starting with a letter, ending with a letter or digit"
    )


def check_label(value: str, what: str) -> str | None:
    if _LABEL.match(value):
        return None
    return (
        f"{what} {show(value)} is invalid; use 1-63 lowercase letters, digits and '-', "
        "starting and ending with a letter or digit"
    )


def check_secret_name(value: str) -> str | None:
    if _SECRET_NAME.match(value):
        return None
    return (
        f"secret name {show(value)} is invalid; use lowercase letters, digits, '-' and '.', "
        "starting and ending with a letter or digit"
    )


def check_env_name(value: str) -> str | None:
    if _ENV_NAME.match(value):
        return None
    return (
        f"env var name {show(value)} is invalid; use letters, digits, '_', '-' and '.', "
        "not starting with a digit"
    )


# --- image references (the distribution/reference grammar) -------------------------------------

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|-+)"
_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*(?::[0-9]+)?"
_IMAGE = re.compile(
    rf"(?:(?P<domain>{_DOMAIN})/)?(?P<path>{_COMPONENT}(?:/{_COMPONENT})*)"
    r"(?::(?P<tag>[\w][\w.-]{0,127}))?"
    r"(?:@(?P<digest>sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128}))?\Z"
)
DEFAULT_REGISTRY = "docker.io"


def check_image(value: str) -> str | None:
    match = _IMAGE.match(value)
    if match is None or len(value) > 512:
        return (
            f"image {show(value)} is not a valid image reference; "
            "use registry/repository:tag or registry/repository@sha256:<64 hex digits>"
        )
    if not match["tag"] and not match["digest"]:
        return (
            f"image {show(value)} has no tag or digest; pin it, "
            f"e.g. {value}:1.0 or {value}@sha256:<64 hex digits>"
        )
    return None


def image_registry(value: str) -> str:
    """The registry host of an image; Docker Hub when the first component is not a host."""
    first, sep, _ = value.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first.lower()
    return DEFAULT_REGISTRY


# --- cpu and memory ----------------------------------------------------------------------------

_MEMORY = re.compile(r"(?P<amount>[0-9]+(?:\.[0-9]+)?)(?P<unit>Gi|Mi)\Z")
_MEMORY_HINT = "use a number followed by Gi or Mi, e.g. 0.5Gi or 512Mi"


def parse_memory(value: str) -> Decimal | None:
    """'0.5Gi' or '512Mi' -> Decimal('0.5') (in Gi); None when malformed."""
    match = _MEMORY.match(value.strip())
    if match is None:
        return None
    try:
        amount = Decimal(match["amount"])
    except InvalidOperation:  # pragma: no cover - the pattern admits only decimals
        return None
    return amount if match["unit"] == "Gi" else amount / 1024


def memory_error(value: str) -> str:
    return f"memory {show(value)} is not valid; {_MEMORY_HINT}"


def format_gi(amount: Decimal) -> str:
    """Decimal('0.50') -> '0.5Gi'; the one spelling ARM echoes back, so diffs stay quiet."""
    text = format(amount.normalize(), "f")
    return f"{text}Gi"


def format_cpu(amount: Decimal) -> str:
    return format(amount.normalize(), "f")


# Valid totals per app: cpu in steps of 0.25 from 0.25 to 4 (Consumption), memory = 2 x cpu.
CPU_STEP = Decimal("0.25")
MAX_CPU = Decimal("4")
VALID_PAIRS: tuple[tuple[Decimal, Decimal], ...] = tuple(
    (CPU_STEP * i, CPU_STEP * i * 2) for i in range(1, int(MAX_CPU / CPU_STEP) + 1)
)
PAIRS_HINT = "0.25/0.5Gi, 0.5/1Gi, 0.75/1.5Gi, 1/2Gi, ... 4/8Gi"


def is_valid_pair(cpu: Decimal, memory: Decimal) -> bool:
    return (cpu, memory) in _PAIR_SET


_PAIR_SET = frozenset(VALID_PAIRS)


# --- Key Vault references ----------------------------------------------------------------------

_KV_URL = re.compile(
    r"https://(?P<host>[A-Za-z0-9.-]+(?::[0-9]+)?)/secrets/(?P<name>[0-9A-Za-z-]{1,127})"
    r"(?:/(?P<version>[0-9A-Za-z]{1,64}))?/?\Z"
)
_KV_RESOURCE_ID = re.compile(
    r"/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.KeyVault/vaults/"
    r"(?P<vault>[A-Za-z0-9-]{3,24})/secrets/(?P<name>[0-9A-Za-z-]{1,127})/?\Z",
    re.IGNORECASE,
)


def keyvault_secret_url(value: str) -> str | None:
    """A Key Vault secret URL, or a Key Vault secret resource ID turned into one; None when neither."""
    if _KV_URL.match(value):
        return value.rstrip("/")
    match = _KV_RESOURCE_ID.match(value)
    if match is None:
        return None
    # Public cloud; sovereign clouds and local stand-ins give the URL instead of the resource ID.
    return f"https://{match['vault'].lower()}.vault.azure.net/secrets/{match['name']}"


def check_keyvault_ref(value: str) -> str | None:
    if keyvault_secret_url(value) is not None:
        return None
    if value.startswith("https://"):
        return (
            f"secret URL {show(value)} is not a Key Vault secret URL; "
            "use https://<vault>.vault.azure.net/secrets/<name>[/<version>]"
        )
    if value.lower().startswith("/subscriptions/"):
        return (
            f"{show(value, 120)} is not a Key Vault secret resource ID; use "
            "/subscriptions/<id>/resourceGroups/<rg>/providers/Microsoft.KeyVault/vaults/<vault>"
            "/secrets/<name> (vault: 3-24 letters, digits and '-')"
        )
    # Never echo the value: it may be the very secret that must not be in Git (or in logs).
    return (
        "secret must be a Key Vault reference, not a value; "
        "use https://<vault>.vault.azure.net/secrets/<name> "
        "or a Key Vault secret resource ID, and keep the value in Key Vault"
    )


# --- other references --------------------------------------------------------------------------

_IDENTITY_ID = re.compile(
    r"/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.ManagedIdentity/"
    r"userAssignedIdentities/[^/]+\Z",
    re.IGNORECASE,
)


def check_identity_id(value: str) -> str | None:
    if _IDENTITY_ID.match(value):
        return None
    return (
        f"identity {show(value)} is not a user-assigned identity resource ID; use /subscriptions/<id>/"
        "resourceGroups/<rg>/providers/Microsoft.ManagedIdentity/userAssignedIdentities/<name>"
    )


def check_ip_range(value: str) -> str | None:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return f"ipAddressRange {show(value)} is not an IP address or CIDR range; use e.g. 192.168.1.0/24"
    return None


_HOST = re.compile(rf"{_DOMAIN}\Z")


def check_registry_server(value: str) -> str | None:
    host = value.split(":", 1)[0]
    if _HOST.match(value) and ("." in host or host == "localhost"):
        return None
    return f"registry server {show(value)} is not a host name; use e.g. myregistry.azurecr.io"


_ORIGIN = re.compile(r"\*|https?://[^/\s?#]+\Z")


def check_origin(value: str) -> str | None:
    if _ORIGIN.match(value):
        return None
    return (
        f"allowed origin {show(value)} is invalid; use '*' or scheme://host[:port], e.g. https://example.com"
    )


def check_repo_path(value: str) -> str | None:
    parts = value.split("/")
    if value and not value.startswith("/") and "\\" not in value and ".." not in parts and "" not in parts:
        return None
    return f"path {show(value)} is invalid; use a path relative to the repository root, e.g. config/web.json"


def check_folder_path(value: str) -> str | None:
    """A repository folder: a relative path, a trailing '/' allowed, '.' for the root."""
    if value in (".", "./") or check_repo_path(value[:-1] if value.endswith("/") else value) is None:
        return None
    return f"folder {show(value)} is invalid; use a folder relative to the repository root, e.g. envs/prod"


def check_mount_path(value: str) -> str | None:
    # ACA accepts relative paths too (recorded: `mnt/secrets`); '..' and '\\' are refused.
    if value.strip() and "\\" not in value and ".." not in value.split("/"):
        return None
    return f"mountPath {show(value)} is invalid; use a path such as /mnt/data, without '..' or '\\'"


_CRON_FIELD = re.compile(r"[0-9A-Za-z*/,?#-]+\Z")


def check_cron(value: str) -> str | None:
    fields = value.split()
    if len(fields) == 5 and all(_CRON_FIELD.match(field) for field in fields):
        return None
    return (
        f"cronExpression {show(value)} is not a 5-field cron expression (minute hour day month weekday); "
        "use e.g. '*/5 * * * *'"
    )


# --- tags --------------------------------------------------------------------------------------

OWNERSHIP_TAGS = ("synoscd-managed", "synoscd-source", "synoscd-revision")
# Set on what a Composition produced (in the place of a user tag); no manifest may set it.
# synoscd-target names the target of a fleet (not the default one: its resources predate fleets).
TARGET_TAG = "synoscd-target"
RESERVED_TAGS = (*OWNERSHIP_TAGS, "synoscd-composition", TARGET_TAG)
MAX_TAGS = 50  # ARM's limit per resource, including the ownership tags SynosCD adds
MAX_TAG_NAME = 512
MAX_TAG_VALUE = 256
_TAG_FORBIDDEN = set("<>%&\\?/")


def check_tag_name(name: str) -> str | None:
    if name.lower() in RESERVED_TAGS:
        return f"tag {show(name)} is reserved for SynosCD's ownership tags; remove it (SynosCD sets it)"
    if not name.strip():
        return "tag name is empty; give the tag a name"
    if len(name) > MAX_TAG_NAME:
        return f"tag name {show(name)} is longer than {MAX_TAG_NAME} characters; shorten it"
    bad = sorted(_TAG_FORBIDDEN.intersection(name))
    if bad:
        return f"tag name {show(name)} contains {' '.join(bad)}; tag names may not contain < > % & \\ ? /"
    return None


def check_tag_value(name: str, value: str) -> str | None:
    if len(value) > MAX_TAG_VALUE:
        return f"value of tag {show(name)} is longer than {MAX_TAG_VALUE} characters; shorten it"
    return None
