"""Checks of infra/ that run here, where no Bicep compiler can be installed (its CLI downloads a binary).

1. Syntax: every .bicep and .bicepparam file under infra/ parses with the tree-sitter Bicep grammar
   (PyPI `tree-sitter-bicep`) with no ERROR or MISSING node; a failure names file:line.
   The grammar knows the `using` statement of a .bicepparam file but not its typeless
   `param NAME = EXPR` assignments (it wants `param NAME TYPE`). Rather than skip .bicepparam files,
   such lines are checked as `var NAME = EXPR` - the same expression grammar, line numbers kept - and
   only while the grammar still lacks them (`GRAMMAR_PARSES_BICEPPARAM` probes that at import).
2. Consistency, read from the syntax trees (not grep): the Function App's app settings cover every
   setting synoscd.config.Settings needs in Azure and name no SYNOSCD_* setting that does not exist;
   Flex Consumption rules (runtime in functionAppConfig, identity-based storage, Key Vault reference);
   each role the code needs is assigned with the expected built-in role definition id.
3. The checks can fail: broken snippets must yield errors at the right lines.

The grammar checks syntax only, and is more lenient than the Bicep compiler in places (it accepts
`[1 2]` without a comma or newline, and knows no resource types or function signatures): a green run
here does not replace `az bicep build` where the Bicep CLI is available.
"""

from __future__ import annotations

import ast
import functools
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import tree_sitter
import tree_sitter_bicep

from synoscd.config import Settings, env_name
from tests.conftest import REPO_ROOT

INFRA = REPO_ROOT / "infra"
MAIN = INFRA / "main.bicep"
FUNCTION_APP = INFRA / "modules" / "functionapp.bicep"
ROLES = INFRA / "modules" / "roles.bicep"

# Built-in role definition ids (Azure built-in roles reference), checked against modules/roles.bicep.
EXPECTED_ROLES = {
    "containerAppsContributor": "358470bc-b998-42bd-ab17-a7e34c199c0f",
    "containerAppsJobsContributor": "4e3d2b60-56ae-4dc6-a233-09c8e5a82e68",
    "keyVaultSecretsUser": "4633458b-17de-408a-b874-0445c86b69e6",
    "storageBlobDataOwner": "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
    "storageQueueDataContributor": "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
    "storageTableDataContributor": "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
    "monitoringMetricsPublisher": "3913510d-42f4-4e42-8a64-420c390055eb",
    "managedIdentityOperator": "f1a07417-d97a-45cb-824c-7a7467783830",
    "reader": "acdd72a7-3385-48ef-bd42-f606fba81ae7",
}
# What the code does with each role, and the module that must assign it to SynosCD's identity.
NEEDED_ROLES = {
    "containerAppsContributor": "target-access.bicep",  # write apps, join the environment
    "containerAppsJobsContributor": "target-access.bicep",  # write and start jobs
    "keyVaultSecretsUser": "keyvault.bicep",  # GitHub App secrets, webhook secret reference
    "storageBlobDataOwner": "storage.bicep",  # Functions host: keys, locks, deployment package
    "storageQueueDataContributor": "storage.bicep",  # the webhook's queue: send, receive, poison
    "storageTableDataContributor": "storage.bicep",  # SynosCD state table
    "monitoringMetricsPublisher": "monitoring.bicep",  # telemetry with Entra (App Insights local auth off)
}
# Exactly the storage roles the functions use (issue 14): no more.
STORAGE_ROLES = {"storageBlobDataOwner", "storageQueueDataContributor", "storageTableDataContributor"}

# Settings without a default that Azure does not set as app settings, and why.
NOT_APP_SETTINGS = {
    "github_app_id": "Key Vault secret github-app-id (SYNOSCD_KEYVAULT_URL)",
    "github_app_installation_id": "Key Vault secret github-app-installation-id",
    "github_app_private_key": "Key Vault secret github-app-private-key",
    "source_path": "a local folder instead of GitHub; not used in Azure",
    "target": "what a synos command works on; the Function app serves every target",
}
# Settings with a default that the deployment still sets, so operators see and change them in one place.
ALSO_SET = {
    "github_branch",
    "github_config_path",
    "timer_schedule",
    "reconcile_interval_seconds",
    "prune_enabled",
    "protected_apps_csv",
}
KEYVAULT_SECRETS = {
    "github-app-id",
    "github-app-installation-id",
    "github-app-private-key",
    "github-webhook-secret",
}
# Flex Consumption takes the runtime from functionAppConfig and deploys to a blob container; these
# settings are deprecated there. AzureWebJobsStorage itself would be a connection string with a key.
FORBIDDEN_APP_SETTINGS = {
    "FUNCTIONS_WORKER_RUNTIME",
    "FUNCTIONS_EXTENSION_VERSION",
    "WEBSITE_RUN_FROM_PACKAGE",
    "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
    "WEBSITE_CONTENTSHARE",
    "SCM_DO_BUILD_DURING_DEPLOYMENT",
    "ENABLE_ORYX_BUILD",
    "AzureWebJobsStorage",
}


# -- parsing -------------------------------------------------------------------------------------


@functools.cache
def _parser() -> tree_sitter.Parser:
    return tree_sitter.Parser(tree_sitter.Language(tree_sitter_bicep.language()))


def syntax_errors(source: bytes) -> list[tuple[int, str]]:
    """(line, what) for every ERROR and MISSING node; lines count from 1."""
    found: list[tuple[int, str]] = []

    def walk(node: tree_sitter.Node) -> None:
        if node.is_missing:
            found.append((node.start_point.row + 1, f"missing {node.type!r}"))
        elif node.type == "ERROR":
            text = node.text.decode(errors="replace").strip().splitlines() if node.text else []
            found.append((node.start_point.row + 1, f"unexpected {text[0][:40]!r}" if text else "error"))
        for child in node.children:
            walk(child)

    walk(_parser().parse(source).root_node)
    return found


GRAMMAR_PARSES_BICEPPARAM = not syntax_errors(b"using './main.bicep'\nparam a = 'x'\n")

_PARAM_ASSIGNMENT = re.compile(rb"^(\s*)param(\s+[A-Za-z_][A-Za-z0-9_]*\s*=)", re.MULTILINE)


def bicepparam_as_checked(source: bytes) -> bytes:
    """The .bicepparam source as the grammar can check it: `param NAME = EXPR` -> `var NAME = EXPR`
    (same expression, same line) while the grammar lacks typeless param assignments."""
    if GRAMMAR_PARSES_BICEPPARAM:
        return source
    return _PARAM_ASSIGNMENT.sub(rb"\1var\2", source)


def checked_source(path: Path) -> bytes:
    source = path.read_bytes()
    return bicepparam_as_checked(source) if path.suffix == ".bicepparam" else source


def infra_files() -> list[Path]:
    return sorted(p for p in INFRA.rglob("*") if p.suffix in (".bicep", ".bicepparam"))


@functools.cache
def tree(path: Path) -> tree_sitter.Node:
    return _parser().parse(checked_source(path)).root_node


# -- tree helpers ----------------------------------------------------------------------------------


def walk(node: tree_sitter.Node) -> Iterator[tree_sitter.Node]:
    yield node
    for child in node.children:
        yield from walk(child)


def text(node: tree_sitter.Node) -> str:
    return node.text.decode() if node.text else ""


def literal(node: tree_sitter.Node | None) -> str | bool | int | None:
    """The value of a plain string, boolean or number node; None for anything computed."""
    if node is None:
        return None
    if node.type == "string":
        parts = [c for c in node.children if c.type not in ("'", "'''")]
        if all(c.type == "string_content" for c in parts):
            return "".join(text(c) for c in parts)
        return None
    if node.type == "boolean":
        return text(node) == "true"
    if node.type == "number":
        return int(text(node))
    return None


def key_of(prop: tree_sitter.Node) -> str:
    key = prop.children[0]
    return str(literal(key)) if key.type == "string" else text(key)


def prop(obj: tree_sitter.Node | None, *path: str) -> tree_sitter.Node | None:
    """Follow object properties by name: prop(body, 'properties', 'siteConfig')."""
    node = obj
    for name in path:
        if node is None or node.type != "object":
            return None
        node = next(
            (p.children[-1] for p in node.children if p.type == "object_property" and key_of(p) == name),
            None,
        )
    return node


def body(declaration: tree_sitter.Node) -> tree_sitter.Node:
    """The object of a resource or module, also under `if (...)` and `[for ...: {...}]`."""
    last = declaration.children[-1]
    if last.type in ("if_statement", "for_statement"):
        last = next(c for c in reversed(last.children) if c.type == "object")
    assert last.type == "object", f"{text(declaration)[:80]!r} has no object body"
    return last


def resources(root: tree_sitter.Node, type_prefix: str) -> list[tree_sitter.Node]:
    return [
        n
        for n in walk(root)
        if n.type == "resource_declaration" and str(literal(n.children[2])).startswith(type_prefix)
    ]


def declarations(root: tree_sitter.Node, kind: str) -> dict[str, tree_sitter.Node]:
    """Top-level declarations by name: kind is parameter_declaration, variable_declaration, ..."""
    return {text(n.children[1]): n for n in root.children if n.type == kind}


def decorator_names(declaration: tree_sitter.Node) -> set[str]:
    previous = declaration.prev_sibling
    if previous is None or previous.type != "decorators":
        return set()
    return {text(n.children[0]) for n in walk(previous) if n.type == "call_expression"}


def decorator_arg(declaration: tree_sitter.Node, name: str) -> tree_sitter.Node | None:
    """The (first) argument of decorator `@name(...)` on a declaration, or None."""
    previous = declaration.prev_sibling
    if previous is None or previous.type != "decorators":
        return None
    for call in (n for n in walk(previous) if n.type == "call_expression"):
        if text(call.children[0]) == name:
            args = [c for c in call.children[-1].children if c.type not in ("(", ")", ",")]
            return args[0] if args else None
    return None


def string_items(array: tree_sitter.Node | None) -> list[str | bool | int | None]:
    return [literal(c) for c in array.children if c.type == "string"] if array is not None else []


def has_default(param: tree_sitter.Node) -> bool:
    return any(c.type == "=" for c in param.children)


def app_settings() -> dict[str, tree_sitter.Node]:
    """name -> value node of the Function App's siteConfig.appSettings, from the syntax tree."""
    (site,) = resources(tree(FUNCTION_APP), "Microsoft.Web/sites@")
    array = prop(body(site), "properties", "siteConfig", "appSettings")
    assert array is not None and array.type == "array", "siteConfig.appSettings must be a literal array"
    settings: dict[str, tree_sitter.Node] = {}
    for item in (c for c in array.children if c.type == "object"):
        name = literal(prop(item, "name"))
        assert isinstance(name, str), f"app setting names must be literals: {text(item)[:80]!r}"
        assert name not in settings, f"app setting {name} set twice"
        value = prop(item, "value")
        assert value is not None, f"app setting {name} has no value"
        settings[name] = value
    return settings


# -- 1. syntax -------------------------------------------------------------------------------------


def test_infra_has_the_expected_files() -> None:
    names = {str(p.relative_to(INFRA)) for p in infra_files()}
    assert {
        "main.bicep",
        "main.bicepparam",
        "modules/functionapp.bicep",
        "modules/keyvault.bicep",
        "modules/monitoring.bicep",
        "modules/roles.bicep",
        "modules/storage.bicep",
        "modules/target-access.bicep",
    } <= names


@pytest.mark.parametrize("path", infra_files(), ids=lambda p: str(p.relative_to(INFRA)))
def test_every_bicep_file_parses_without_error_or_missing_nodes(path: Path) -> None:
    errors = syntax_errors(checked_source(path))
    assert not errors, "\n".join(f"{path.relative_to(REPO_ROOT)}:{line}: {what}" for line, what in errors)


# Broken snippet -> the line the parser reports (where it notices: the end of an unclosed object, the
# first token that cannot continue the previous line).
BROKEN = {
    "unclosed object": (b"param a string\nresource s 'X/y@1' = {\n  name: a\n", 3),
    "stray token": (b"var a = 1\nvar b = ) 2\n", 2),
    "missing value": (b"param a string = \nvar b = 1\n", 2),
    "extra brace": (b"var a = {\n  b: 1\n}}\nvar c = 2\n", 3),
    "resource without type": (b"resource r = {\n}\n", 1),
    "module without =": (b"module m 'm.bicep' {\n  name: 'x'\n}\n", 1),
    # an unterminated string runs to the end of the file, where it is reported
    "unterminated string": (b"var a = 'x\nvar b = 2\n\nvar c = 3\n", 5),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_the_syntax_check_finds_errors_in_broken_bicep(name: str) -> None:
    source, line = BROKEN[name]
    errors = syntax_errors(source)
    assert errors, f"{name}: no error found"
    assert line in {found for found, _ in errors}, f"{name}: errors at {errors}, expected line {line}"


def test_the_bicepparam_check_finds_errors_and_keeps_lines() -> None:
    good = b"using './main.bicep'\n\nparam a = 'x'\nparam b = readEnvironmentVariable('B', '')\n"
    assert not syntax_errors(bicepparam_as_checked(good))
    broken = b"using './main.bicep'\nparam a = 'x'\nparam b = {\n  c: 1\n"
    assert syntax_errors(bicepparam_as_checked(broken))
    assert syntax_errors(bicepparam_as_checked(b"using './main.bicep'\nparam a = ]\n"))[0][0] == 2


def test_the_using_statement_is_parsed_by_the_grammar_itself() -> None:
    root = tree(INFRA / "main.bicepparam")
    (using,) = [n for n in root.children if n.type == "using_statement"]
    target = literal(using.children[1])
    assert target == "./main.bicep"
    assert (INFRA / str(target)).resolve() == MAIN.resolve()


# -- 2. consistency ----------------------------------------------------------------------------------


def test_app_settings_cover_every_setting_the_code_needs_in_azure() -> None:
    fields = Settings.model_fields
    assert set(NOT_APP_SETTINGS) <= set(fields), "NOT_APP_SETTINGS names a field that does not exist"
    without_default = {name for name, info in fields.items() if info.default is None}
    needed = (without_default - set(NOT_APP_SETTINGS)) | ALSO_SET
    assert {
        "azure_subscription_id",
        "azure_resource_group",
        "azure_container_app_environment",
        "github_repo_owner",
        "github_repo_name",
        "state_store",
        "azure_managed_identity_client_id",
        "keyvault_url",
    } <= needed
    names = set(app_settings())
    missing = sorted(env_name(f) for f in needed if env_name(f) not in names)
    assert not missing, f"{FUNCTION_APP.relative_to(REPO_ROOT)} lacks app settings {missing}"


def test_every_synoscd_app_setting_is_a_real_setting() -> None:
    known = {env_name(name) for name in Settings.model_fields}
    unknown = sorted(n for n in app_settings() if n.startswith("SYNOSCD_") and n not in known)
    assert not unknown, f"app settings that synoscd/config.py does not read: {unknown}"


def test_app_settings_referenced_by_bindings_exist() -> None:
    # The timer's schedule is %SYNOSCD_TIMER_SCHEDULE%: the host cannot index it without the setting.
    referenced = set(re.findall(r"%([A-Za-z0-9_]+)%", (REPO_ROOT / "function_app.py").read_text()))
    assert referenced, "function_app.py references no app setting; update this test"
    assert referenced <= set(app_settings())


def test_flex_consumption_runtime_and_identity_based_storage() -> None:
    settings = app_settings()
    assert not FORBIDDEN_APP_SETTINGS & set(settings), "deprecated or key-based settings on Flex Consumption"
    assert literal(settings["AzureWebJobsStorage__credential"]) == "managedidentity"
    assert text(settings["AzureWebJobsStorage__clientId"]) == "identityClientId"
    assert text(settings["SYNOSCD_AZURE_MANAGED_IDENTITY_CLIENT_ID"]) == "identityClientId"
    assert text(settings["AzureWebJobsStorage__accountName"]) == "storageAccountName"
    assert "APPLICATIONINSIGHTS_CONNECTION_STRING" in settings

    root = tree(FUNCTION_APP)
    (plan,) = resources(root, "Microsoft.Web/serverfarms@")
    assert literal(prop(body(plan), "sku", "name")) == "FC1"
    assert literal(prop(body(plan), "sku", "tier")) == "FlexConsumption"
    (site,) = resources(root, "Microsoft.Web/sites@")
    assert "linux" in str(literal(prop(body(site), "kind")))
    config = prop(body(site), "properties", "functionAppConfig")
    assert literal(prop(config, "runtime", "name")) == "python"
    assert literal(prop(config, "runtime", "version")) == "3.11"
    assert literal(prop(config, "deployment", "storage", "type")) == "blobContainer"
    auth = prop(config, "deployment", "storage", "authentication")
    assert literal(prop(auth, "type")) == "UserAssignedIdentity"
    assert prop(config, "scaleAndConcurrency", "alwaysReady") is not None
    assert text(prop(body(site), "properties", "keyVaultReferenceIdentity") or root) == "identityId"
    assert literal(prop(body(site), "identity", "type")) == "UserAssigned"

    # alwaysReady is a documented parameter of main.bicep that defaults to 0 (scale to zero).
    always_ready = declarations(tree(MAIN), "parameter_declaration")["alwaysReadyInstances"]
    assert text(always_ready.children[-1]) == "0"


def test_no_account_keys_anywhere() -> None:
    (account,) = resources(tree(INFRA / "modules" / "storage.bicep"), "Microsoft.Storage/storageAccounts@")
    assert literal(prop(body(account), "properties", "allowSharedKeyAccess")) is False
    for path in infra_files():
        source = path.read_text()
        for needle in ("listKeys(", "AccountKey=", "primaryKey", "SharedAccessSignature"):
            assert needle not in source, f"{path.relative_to(REPO_ROOT)} uses {needle}"


def test_state_store_is_the_table_endpoint_of_the_storage_account() -> None:
    storage = tree(INFRA / "modules" / "storage.bicep")
    outputs = declarations(storage, "output_declaration")
    assert (
        text(outputs["tableEndpoint"].children[-1])
        == "'https://${account.name}.table.${environment().suffixes.storage}'"
    )
    main_body = body(declarations(tree(MAIN), "module_declaration")["functionApp"])
    assert text(prop(main_body, "params", "stateStore") or main_body) == "storage.outputs.tableEndpoint"
    assert text(app_settings()["SYNOSCD_STATE_STORE"]) == "stateStore"


def test_key_vault_is_rbac_and_holds_the_secrets_the_code_reads() -> None:
    root = tree(INFRA / "modules" / "keyvault.bicep")
    (vault,) = resources(root, "Microsoft.KeyVault/vaults@")
    assert literal(prop(body(vault), "properties", "enableRbacAuthorization")) is True
    secrets = {literal(prop(body(r), "name")) for r in resources(root, "secrets")}
    assert secrets == KEYVAULT_SECRETS
    code = "\n".join(p.read_text() for p in (REPO_ROOT / "synoscd").rglob("*.py"))
    for name in KEYVAULT_SECRETS:
        assert f'"{name}"' in code, f"synoscd/ does not read the secret {name}"
    for name in ("githubAppId", "githubAppInstallationId", "githubAppPrivateKey", "githubWebhookSecret"):
        for path in (MAIN, INFRA / "modules" / "keyvault.bicep"):
            param = declarations(tree(path), "parameter_declaration")[name]
            assert "secure" in decorator_names(param), f"{path.name}: {name} must be @secure()"


def test_webhook_secret_is_a_key_vault_reference() -> None:
    value = app_settings()["SYNOSCD_GITHUB_WEBHOOK_SECRET"]
    assert text(value) == "'@Microsoft.KeyVault(SecretUri=${webhookSecretUri})'"
    outputs = declarations(tree(INFRA / "modules" / "keyvault.bicep"), "output_declaration")
    assert "secrets/github-webhook-secret" in text(outputs["webhookSecretUri"])
    assert text(app_settings()["SYNOSCD_KEYVAULT_URL"]) == "keyVaultUrl"


def test_role_constants_are_the_built_in_role_ids() -> None:
    roles = declarations(tree(ROLES), "variable_declaration")["builtInRoles"]
    assert "export" in decorator_names(roles)
    entries = [p for p in roles.children[-1].children if p.type == "object_property"]
    values = {key_of(p): literal(p.children[-1]) for p in entries}
    assert values == EXPECTED_ROLES


def _assigned_roles(path: Path) -> set[str]:
    assigned: set[str] = set()
    for assignment in resources(tree(path), "Microsoft.Authorization/roleAssignments@"):
        for node in walk(assignment):
            if node.type == "member_expression" and text(node.children[0]) == "builtInRoles":
                assigned.add(text(node.children[-1]))
    return assigned


def test_each_needed_role_is_assigned_where_expected() -> None:
    every = set().union(*(_assigned_roles(p) for p in infra_files()))
    assert every <= set(EXPECTED_ROLES), f"unknown roles assigned: {every - set(EXPECTED_ROLES)}"
    for role, module in NEEDED_ROLES.items():
        assert role in _assigned_roles(INFRA / "modules" / module), f"{role} is not assigned in {module}"
    # Literal GUIDs in role assignments would bypass the named constants.
    for path in infra_files():
        for assignment in resources(tree(path), "Microsoft.Authorization/roleAssignments@"):
            assert not re.search(r"[0-9a-f]{8}-[0-9a-f]{4}-", text(assignment)), path


def test_target_group_access_is_scoped_to_the_target_group() -> None:
    modules = declarations(tree(MAIN), "module_declaration")
    target = body(modules["targetAccess"])
    assert literal(modules["targetAccess"].children[2]) == "modules/target-access.bicep"
    assert text(prop(target, "scope") or target) == "resourceGroup(targetResourceGroupName)"
    params = declarations(tree(MAIN), "parameter_declaration")
    assert {"containerAppEnvironmentName", "targetResourceGroupName", "alwaysReadyInstances"} <= set(params)
    # The environment must exist in the target group (SynosCD reads it there).
    access = tree(INFRA / "modules" / "target-access.bicep")
    (environment,) = resources(access, "Microsoft.App/managedEnvironments@")
    assert any(c.type == "existing" for c in environment.children)
    # Only a runtime property makes ARM read it during the deployment (an id alone is computed).
    symbol = text(environment.children[1])
    outputs = declarations(access, "output_declaration").values()
    assert any(f"{symbol}.properties." in text(o) for o in outputs), "nothing reads the environment"


def test_every_other_target_gets_the_target_roles_on_its_own_group_and_subscription() -> None:
    """Issue 19: role assignments per target resource group from a parameter array; the same array
    is SYNOSCD_TARGETS (unless the ops repository declares the targets)."""
    main = tree(MAIN)
    params = declarations(main, "parameter_declaration")
    assert text(params["targets"].children[2]) == "array" and has_default(params["targets"])
    modules = declarations(main, "module_declaration")
    fleet = modules["fleetAccess"]
    assert literal(fleet.children[2]) == "modules/target-access.bicep"
    assert fleet.children[-1].type == "for_statement" and "in targets" in text(fleet.children[-1])
    scope = text(prop(body(fleet), "scope") or body(fleet))
    assert (
        scope
        == "resourceGroup(target.?subscriptionId ?? subscription().subscriptionId, target.resourceGroup)"
    )
    assert (
        text(prop(body(fleet), "params", "containerAppEnvironmentName") or body(fleet))
        == "target.environment"
    )
    passed = text(prop(body(modules["functionApp"]), "params", "targetsJson") or body(fleet))
    assert "string(declaredTargets)" in passed and "targetsInAppSettings" in passed
    assert "fleetAccess" in text(prop(body(modules["functionApp"]), "dependsOn") or body(fleet))
    assert text(app_settings()["SYNOSCD_TARGETS"]) == "targetsJson"


def test_outputs_name_the_base_url_and_the_webhook_route_of_function_app_py() -> None:
    outputs = declarations(tree(MAIN), "output_declaration")
    route = None
    for node in ast.walk(ast.parse((REPO_ROOT / "function_app.py").read_text())):
        if isinstance(node, ast.FunctionDef) and node.name == "github_webhook":
            for deco in node.decorator_list:
                if isinstance(deco, ast.Call) and getattr(deco.func, "attr", "") == "route":
                    route = next(k.value.value for k in deco.keywords if k.arg == "route")  # type: ignore[attr-defined]
    prefix = json.loads((REPO_ROOT / "host.json").read_text())["extensions"]["http"]["routePrefix"]
    assert text(outputs["webhookUrl"].children[-1]) == (
        f"'https://${{functionApp.outputs.defaultHostName}}/{prefix}/{route}'"
    )
    assert text(outputs["functionBaseUrl"].children[-1]) == "'https://${functionApp.outputs.defaultHostName}'"


def test_bicepparam_sets_declared_parameters_and_every_required_one() -> None:
    params = declarations(tree(MAIN), "parameter_declaration")
    example = tree(INFRA / "main.bicepparam")
    kind = "parameter_declaration" if GRAMMAR_PARSES_BICEPPARAM else "variable_declaration"
    assigned = set(declarations(example, kind))
    assert assigned <= set(params), f"main.bicepparam sets undeclared parameters {assigned - set(params)}"
    required = {n for n, p in params.items() if not has_default(p)}
    assert required <= assigned, f"main.bicepparam lacks required parameters {required - assigned}"
    secure = {n for n, p in params.items() if "secure" in decorator_names(p)}
    for name in secure & assigned:
        value = text(declarations(example, kind)[name].children[-1])
        assert value.startswith("readEnvironmentVariable("), f"{name}: secrets do not belong in the file"


def test_module_parameters_match_what_main_passes() -> None:
    modules = declarations(tree(MAIN), "module_declaration")
    for name, module in modules.items():
        path = (INFRA / str(literal(module.children[2]))).resolve()
        declared = declarations(tree(path), "parameter_declaration")
        passed_node = prop(body(module), "params")
        entries = passed_node.children if passed_node is not None else []
        passed = {key_of(p) for p in entries if p.type == "object_property"}
        assert passed <= set(declared), f"module {name} passes unknown params {passed - set(declared)}"
        required = {n for n, p in declared.items() if not has_default(p)}
        assert required <= passed, f"module {name} lacks params {required - passed}"


# -- 3. hardening (issue 12 item 8, issue 14 item 5) ----------------------------------------------------


def _module(path: str) -> tree_sitter.Node:
    return tree(INFRA / "modules" / path)


def test_function_app_has_no_ftp_tls_1_2_and_no_basic_publishing_credentials() -> None:
    root = tree(FUNCTION_APP)
    (site,) = resources(root, "Microsoft.Web/sites@")
    config = prop(body(site), "properties", "siteConfig")
    assert literal(prop(config, "ftpsState")) == "Disabled"
    assert literal(prop(config, "minTlsVersion")) == "1.2"
    assert literal(prop(config, "scmMinTlsVersion")) == "1.2"
    assert literal(prop(body(site), "properties", "httpsOnly")) is True
    policies = {
        literal(prop(body(r), "name")): literal(prop(body(r), "properties", "allow"))
        for r in resources(root, "Microsoft.Web/sites/basicPublishingCredentialsPolicies@")
    }
    assert policies == {"ftp": False, "scm": False}


def test_storage_and_key_vault_public_network_access_is_a_parameter_with_private_endpoints() -> None:
    params = declarations(tree(MAIN), "parameter_declaration")
    access = params["publicNetworkAccess"]
    assert string_items(decorator_arg(access, "allowed")) == ["Enabled", "Disabled"]
    assert text(access.children[-1]) == "'Enabled'", "open by default: closing needs the private endpoints"
    (account,) = resources(_module("storage.bicep"), "Microsoft.Storage/storageAccounts@")
    (vault,) = resources(_module("keyvault.bicep"), "Microsoft.KeyVault/vaults@")
    for resource in (account, vault):
        assert (
            text(prop(body(resource), "properties", "publicNetworkAccess") or resource)
            == "publicNetworkAccess"
        )
    modules = declarations(tree(MAIN), "module_declaration")
    for name in ("storage", "vault"):
        assert (
            text(prop(body(modules[name]), "params", "publicNetworkAccess") or MAIN) == "publicNetworkAccess"
        )
    endpoints = modules["privateEndpoints"]
    assert "!empty(privateEndpointSubnetId)" in text(endpoints), "private endpoints only with a subnet"
    source = (INFRA / "modules" / "private-endpoints.bicep").read_text()
    for group in ("blob", "queue", "table", "vault"):
        assert f"name: '{group}'" in source, f"no private endpoint for {group}"
    assert "privatelink.vaultcore.azure.net" in source and "privateDnsZoneGroups" in source
    (site,) = resources(tree(FUNCTION_APP), "Microsoft.Web/sites@")
    subnet = prop(body(site), "properties", "virtualNetworkSubnetId")
    assert subnet is not None and "functionSubnetId" in text(subnet), "the app can join the network"


def test_operators_never_reach_the_github_app_private_key() -> None:
    root = _module("keyvault.bicep")
    for assignment in resources(root, "Microsoft.Authorization/roleAssignments@"):
        if "operatorPrincipalId" in text(prop(body(assignment), "properties", "principalId") or assignment):
            scope = text(prop(body(assignment), "scope") or assignment)
            assert scope != "vault", "an operator's role on the whole vault reaches every secret"
            assert scope.startswith("operatorSecrets["), scope
    names = declarations(tree(MAIN), "parameter_declaration")["operatorSecretNames"]
    allowed = set(string_items(decorator_arg(names, "allowed")))
    assert allowed and allowed <= KEYVAULT_SECRETS
    assert not allowed & {"github-app-private-key", "github-webhook-secret"}
    assert text(names.children[-1]) == "[]", "none by default"


def test_key_vault_name_and_create_mode_survive_a_soft_deleted_vault() -> None:
    params = declarations(tree(MAIN), "parameter_declaration")
    mode = params["keyVaultCreateMode"]
    assert string_items(decorator_arg(mode, "allowed")) == ["default", "recover"]
    name = text(declarations(tree(MAIN), "variable_declaration")["vaultName"].children[-1])
    assert "keyVaultNameSuffix" in name and "uniqueString(" in name, name
    (vault,) = resources(_module("keyvault.bicep"), "Microsoft.KeyVault/vaults@")
    assert text(prop(body(vault), "properties", "createMode") or vault) == "createMode"
    assert literal(prop(body(vault), "properties", "enableSoftDelete")) is True
    modules = declarations(tree(MAIN), "module_declaration")
    assert text(prop(body(modules["vault"]), "params", "createMode") or MAIN) == "keyVaultCreateMode"
    guide = (REPO_ROOT / "docs" / "operations.md").read_text()
    assert "keyVaultCreateMode=recover" in guide and "soft-deleted" in guide


def test_maximum_instance_count_respects_the_flex_consumption_minimum() -> None:
    param = declarations(tree(MAIN), "parameter_declaration")["maximumInstanceCount"]
    assert literal(decorator_arg(param, "minValue")) == 40
    assert literal(decorator_arg(param, "maxValue")) == 1000
    assert int(text(param.children[-1])) >= 40


def test_app_insights_takes_only_entra_telemetry_from_the_identity() -> None:
    root = _module("monitoring.bicep")
    (component,) = resources(root, "Microsoft.Insights/components@")
    assert literal(prop(body(component), "properties", "DisableLocalAuth")) is True
    (publisher,) = resources(root, "Microsoft.Authorization/roleAssignments@")
    assert text(prop(body(publisher), "scope") or root) == "appInsights"
    assert "monitoringMetricsPublisher" in text(publisher)
    auth = text(app_settings()["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"])
    assert auth == "'ClientId=${identityClientId};Authorization=AAD'"


def test_the_identity_holds_only_the_storage_roles_the_functions_use() -> None:
    assigned = _assigned_roles(INFRA / "modules" / "storage.bicep") - {"storageTableDataContributor"}
    assert assigned | {"storageTableDataContributor"} == STORAGE_ROLES
    every = set().union(*(_assigned_roles(p) for p in infra_files()))
    assert {r for r in every if r.startswith("storage")} == STORAGE_ROLES


def test_the_queue_and_its_poison_queue_are_the_ones_the_code_reads() -> None:
    root = _module("storage.bicep")
    queues = {text(prop(body(r), "name") or root) for r in resources(root, "queues")}
    assert queues == {"queueName", "'${queueName}-poison'"}
    assert text(app_settings()["SYNOSCD_QUEUE_NAME"]) == "queueName"
    default = declarations(tree(MAIN), "parameter_declaration")["queueName"].children[-1]
    assert literal(default) == Settings.model_fields["queue_name"].default
    # The trigger reads it through AzureWebJobsStorage, identity-based (no connection string).
    source = (REPO_ROOT / "function_app.py").read_text()
    assert 'connection="AzureWebJobsStorage"' in source and "%SYNOSCD_QUEUE_NAME%" in source
    assert literal(app_settings()["AzureWebJobsStorage__credential"]) == "managedidentity"
    host = json.loads((REPO_ROOT / "host.json").read_text())["extensions"]["queues"]
    assert host["maxDequeueCount"] >= 2, "poison handling: a failing message is moved after retries"


def test_the_deploy_commands_build_remotely() -> None:
    guide = (REPO_ROOT / "docs" / "operations.md").read_text()
    commands = guide.replace("\\\n", " ").splitlines()
    deploys = [
        line for line in commands if line.strip().startswith("az functionapp deployment source config-zip")
    ]
    assert deploys, "the guide has no zip deploy command"
    assert all("--build-remote true" in line for line in deploys), deploys


# -- alerts (modules/alerts.bicep) -------------------------------------------------------------------

ALERTS = INFRA / "modules" / "alerts.bicep"


def _query_rules() -> dict[str, tree_sitter.Node]:
    return {
        text(r.children[1]): body(r)
        for r in resources(tree(ALERTS), "Microsoft.Insights/scheduledQueryRules@")
    }


def test_alerts_cover_the_four_conditions_with_an_action_group() -> None:
    rules = _query_rules()
    assert set(rules) == {"noSuccessfulPass", "failedPasses", "pruneBlocked", "webhookSignatureFailures"}
    (group,) = resources(tree(ALERTS), "Microsoft.Insights/actionGroups@")
    assert literal(prop(body(group), "location")) == "global"
    assert text(prop(body(group), "properties", "emailReceivers") or group) == "emailReceivers"
    assert text(prop(body(group), "properties", "webhookReceivers") or group) == "webhookReceivers"
    variables = declarations(tree(ALERTS), "variable_declaration")
    assert "alertEmails" in text(variables["emailReceivers"]) and "alertWebhookUrl" in text(
        variables["webhookReceivers"]
    )
    group_symbol = text(group.children[1])
    for name, rule in rules.items():
        actions = prop(rule, "properties", "actions", "actionGroups")
        assert actions is not None and f"{group_symbol}.id" in text(actions), f"{name} notifies no one"
        assert literal(prop(rule, "properties", "enabled")) is True


def test_alerts_query_the_monitoring_workspace() -> None:
    for name, rule in _query_rules().items():
        scopes = prop(rule, "properties", "scopes")
        assert scopes is not None and [text(c) for c in scopes.children if c.type == "identifier"] == [
            "workspaceId"
        ], name
    module = body(declarations(tree(MAIN), "module_declaration")["alerts"])
    assert (
        literal(declarations(tree(MAIN), "module_declaration")["alerts"].children[2])
        == "modules/alerts.bicep"
    )
    assert text(prop(module, "params", "workspaceId") or module) == "monitoring.outputs.workspaceId"
    outputs = declarations(tree(INFRA / "modules" / "monitoring.bicep"), "output_declaration")
    (workspace,) = resources(
        tree(INFRA / "modules" / "monitoring.bicep"), "Microsoft.OperationalInsights/workspaces@"
    )
    assert text(outputs["workspaceId"].children[-1]) == f"{text(workspace.children[1])}.id"
    assert text(prop(module, "params", "reconcileIntervalSeconds") or module) == "reconcileIntervalSeconds"


def test_alert_queries_name_metrics_and_functions_that_exist() -> None:
    from synoscd.telemetry.instruments import BY_NAME

    queries = {
        name: text(prop(rule, "properties", "criteria") or rule) for name, rule in _query_rules().items()
    }
    found = [m for q in queries.values() for m in re.findall(r'Name == \\?"(synoscd\.[a-z_.]+)', q)]
    assert sorted(set(found)) == ["synoscd.passes", "synoscd.prune.blocked"]
    for name, query in queries.items():
        for metric in re.findall(r'Name == \\?"(synoscd\.[a-z_.]+)\\?"', query):
            assert metric in BY_NAME, f"{name} queries {metric}, which synoscd/telemetry does not record"
    assert "synoscd.passes" in queries["noSuccessfulPass"] and '"succeeded"' in queries["noSuccessfulPass"]
    assert "synoscd.prune.blocked" in queries["pruneBlocked"]
    # the webhook function's name as function_app.py registers it
    assert 'function_name("github_webhook")' in (REPO_ROOT / "function_app.py").read_text()
    assert '"github_webhook"' in queries["webhookSignatureFailures"]


def test_the_dead_mans_window_covers_three_intervals() -> None:
    variables = declarations(tree(ALERTS), "variable_declaration")
    assert text(variables["deadManSeconds"].children[-1]) == "3 * reconcileIntervalSeconds"
    rule = _query_rules()["noSuccessfulPass"]
    assert text(prop(rule, "properties", "windowSize") or rule) == "deadManWindow"
    assert "ago(${deadManSeconds}s)" in text(prop(rule, "properties", "criteria") or rule)
    # every window the ternary can choose is one Azure Monitor accepts for log search alerts
    windows = set(re.findall(r"'(P[T0-9A-Z]+)'", text(variables["deadManWindow"])))
    assert windows <= {
        "PT5M",
        "PT10M",
        "PT15M",
        "PT30M",
        "PT45M",
        "PT1H",
        "PT2H",
        "PT3H",
        "PT4H",
        "PT5H",
        "PT6H",
        "P1D",
        "P2D",
    }


def test_operator_write_access_is_optional_and_grants_exactly_the_two_write_roles() -> None:
    """docs/operations.md has operators run `synos restore` and `synos sync --force-prune`: they write
    apps and jobs, which Reader does not allow. The write roles come only with operatorWriteAccess."""
    params = declarations(tree(MAIN), "parameter_declaration")
    assert "operatorWriteAccess" in params and text(params["operatorWriteAccess"].children[-1]) == "false"
    for module in ("modules/target-access.bicep",):
        access = tree(INFRA / module)
        assert "operatorWriteAccess" in declarations(access, "parameter_declaration")
        operator = [
            r
            for r in resources(access, "Microsoft.Authorization/roleAssignments@")
            if "operatorPrincipalId" in text(prop(body(r), "properties") or r)
        ]
        gated = [r for r in operator if "operatorWriteAccess" in text(r)]
        roles = {
            n
            for r in gated
            for n in EXPECTED_ROLES
            if f"builtInRoles.{n})" in text(prop(body(r), "properties") or r)
        }
        assert roles == {"containerAppsContributor", "containerAppsJobsContributor"}, roles
        for r in gated:
            assert "!empty(operatorPrincipalId) && operatorWriteAccess" in text(r)
        ungated = {
            n for r in operator if r not in gated for n in EXPECTED_ROLES if f"builtInRoles.{n})" in text(r)
        }
        assert ungated == {"reader"}, "without the parameter the operator only reads"
    passed = prop(body(declarations(tree(MAIN), "module_declaration")["targetAccess"]), "params")
    assert passed is not None and "operatorWriteAccess: operatorWriteAccess" in text(passed)
    guide = (REPO_ROOT / "docs" / "operations.md").read_text()
    assert "operatorWriteAccess" in guide and "synos restore" in guide
