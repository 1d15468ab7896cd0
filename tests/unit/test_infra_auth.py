"""Easy Auth in infra/ (modules/auth.bicep), read from the tree-sitter syntax trees like test_infra.py:
every route needs a signed-in user except exactly the webhook and health routes of function_app.py;
the dashboard is on in Azure only with the sign-in parameters, and then behind Easy Auth."""

from __future__ import annotations

import ast
import typing

from synoscd.config import Settings
from tests.conftest import REPO_ROOT
from tests.unit.test_infra import (
    FUNCTION_APP,
    INFRA,
    MAIN,
    app_settings,
    body,
    declarations,
    has_default,
    literal,
    prop,
    resources,
    syntax_errors,
    text,
    tree,
    walk,
)

AUTH = INFRA / "modules" / "auth.bicep"


def _routes() -> dict[str, dict[str, object]]:
    """function_app.py's HTTP routes, read from its decorators (get_functions() may run once only)."""
    out: dict[str, dict[str, object]] = {}
    for fn in ast.parse((REPO_ROOT / "function_app.py").read_text()).body:
        if not isinstance(fn, ast.FunctionDef):
            continue
        calls = {
            d.func.attr: d
            for d in fn.decorator_list
            if isinstance(d, ast.Call) and isinstance(d.func, ast.Attribute)
        }
        if "route" not in calls:
            continue
        name = ast.literal_eval(calls["function_name"].args[0])
        kw = {k.arg: k.value for k in calls["route"].keywords}
        out[name] = {
            "route": ast.literal_eval(kw["route"]),
            "methods": ast.literal_eval(kw["methods"]),
            "authLevel": ast.unparse(kw["auth_level"]).rsplit(".", 1)[-1],
        }
    return out


def _auth_properties() -> typing.Any:
    (config,) = resources(tree(AUTH), "Microsoft.Web/sites/config@")
    assert literal(prop(body(config), "name")) == "authsettingsV2"
    return prop(body(config), "properties")


def _array_literals(node: typing.Any) -> list[object]:
    assert node is not None and node.type == "array", text(node) if node is not None else None
    return [literal(c) for c in node.children if c.type not in ("[", "]", "\n")]


def test_auth_module_parses_and_requires_sign_in() -> None:
    assert syntax_errors(AUTH.read_bytes()) == []
    props = _auth_properties()
    assert literal(prop(props, "platform", "enabled")) is True
    assert literal(prop(props, "globalValidation", "requireAuthentication")) is True
    assert literal(prop(props, "httpSettings", "requireHttps")) is True
    aad = prop(props, "identityProviders", "azureActiveDirectory")
    assert literal(prop(aad, "enabled")) is True
    assert text(prop(aad, "registration", "clientId")) == "clientId"
    issuer = text(prop(aad, "registration", "openIdIssuer"))
    assert "tenantId" in issuer and issuer.endswith("/v2.0'")


def test_only_the_webhook_and_health_routes_skip_sign_in() -> None:
    routes = _routes()
    anonymous_by_design = {"github_webhook", "health"}  # signature, probe
    params = declarations(tree(AUTH), "parameter_declaration")
    excluded = set(_array_literals(params["excludedPaths"].children[-1]))
    assert excluded == {f"/api/{routes[n]['route']}" for n in anonymous_by_design}
    props = _auth_properties()
    assert text(prop(props, "globalValidation", "excludedPaths")) == "excludedPaths"
    # The dashboard and the JSON API are anonymous at the Functions level only because Easy Auth
    # stands in front of them: they must not be excluded from it.
    for name in ("dashboard", "api_v1"):
        assert routes[name]["authLevel"] == "ANONYMOUS" and routes[name]["methods"] == ["GET"]
        assert not any(f"/api/{routes[name]['route']}".startswith(p.rstrip("/")) for p in map(str, excluded))


def test_unauthenticated_requests_are_redirected_or_get_401() -> None:
    params = declarations(tree(AUTH), "parameter_declaration")
    action = params["unauthenticatedClientAction"]
    allowed = next(n for n in walk(action.prev_sibling) if n.type == "array")
    assert set(_array_literals(allowed)) == {"RedirectToLoginPage", "Return401"}
    assert literal(action.children[-1]) == "RedirectToLoginPage"
    assert text(prop(_auth_properties(), "globalValidation", "unauthenticatedClientAction")) == (
        "unauthenticatedClientAction"
    )


def test_main_deploys_auth_only_with_a_client_id_and_sets_the_ui_setting() -> None:
    main = tree(MAIN)
    params = declarations(main, "parameter_declaration")
    assert (
        has_default(params["dashboardClientId"]) and literal(params["dashboardClientId"].children[-1]) == ""
    )
    module = declarations(main, "module_declaration")["auth"]
    assert module.children[-1].type == "if_statement" and "!empty(dashboardClientId)" in text(
        module.children[-1]
    )
    function_app = declarations(main, "module_declaration")["functionApp"]
    passed = text(prop(body(function_app), "params", "dashboardAuth"))
    assert passed == "empty(dashboardClientId) ? 'off' : 'easyauth'"
    # functionapp.bicep turns it into SYNOSCD_UI_AUTH; its allowed values are values the code knows,
    # and never 'loopback' (the local host's mode) in Azure.
    assert text(app_settings()["SYNOSCD_UI_AUTH"]) == "dashboardAuth"
    fa_param = declarations(tree(FUNCTION_APP), "parameter_declaration")["dashboardAuth"]
    allowed = set(_array_literals(next(n for n in walk(fa_param.prev_sibling) if n.type == "array")))
    known = set(typing.get_args(Settings.model_fields["ui_auth"].annotation))
    assert allowed == {"off", "easyauth"} and allowed <= known and "loopback" in known
    assert literal(fa_param.children[-1]) == "off", "no sign-in configured: no dashboard"


def test_no_secret_is_a_literal_in_the_auth_module() -> None:
    source = AUTH.read_text()
    assert "clientSecret'" not in source and "clientSecretSettingName" in source
    assert (REPO_ROOT / "infra" / "modules" / "auth.bicep").exists()
