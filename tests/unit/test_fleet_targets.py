"""The fleet's targets (synoscd/fleet/targets.py and the Target kind): declarations from the app
settings and the repository, their errors, the table each target's state lives in, the settings a
target's runtime works with, which targets a push touched, and ownership by target."""

from __future__ import annotations

import json
import re

from hypothesis import given
from hypothesis import strategies as st

from synoscd.azure.translate import TARGET_TAG, Target, app_envelope, ownership, target_of
from synoscd.config import Settings
from synoscd.fleet.targets import (
    DEFAULT_TARGET,
    TargetDef,
    combine,
    default_target,
    from_manifest,
    from_settings,
    settings_for,
    table_name,
    touched,
)
from synoscd.manifests.desired import fit_target, load_desired
from synoscd.manifests.schema import App

SUB_A = "00000000-0000-0000-0000-00000000000a"
SUB_B = "00000000-0000-0000-0000-00000000000b"
ENV_ID = f"/subscriptions/{SUB_A}/resourceGroups/rg-a/providers/Microsoft.App/managedEnvironments/env-a"


def target_yaml(name: str, env: str = "cae-prod", path: str = "envs/prod", extra: str = "") -> str:
    return (
        f"apiVersion: synoscd.io/v1alpha1\nkind: Target\nmetadata:\n  name: {name}\nspec:\n"
        f"  subscriptionId: {SUB_A}\n  resourceGroup: rg-prod\n  environment: {env}\n  path: {path}\n{extra}"
    )


def settings(**kw: object) -> Settings:
    base = {
        "azure_subscription_id": SUB_A,
        "azure_resource_group": "rg-a",
        "azure_container_app_environment": "env-a",
        "github_config_path": "apps",
        "state_table": "synoscd",
    }
    return Settings(**{**base, **kw})  # type: ignore[arg-type]


# -- declarations -------------------------------------------------------------------------------------


def test_the_single_environment_settings_are_the_default_target() -> None:
    target = default_target(settings())
    assert target is not None and target.is_default
    assert (target.subscription_id, target.resource_group, target.environment, target.path) == (
        SUB_A,
        "rg-a",
        "env-a",
        "apps",
    )
    assert default_target(settings(azure_subscription_id=None)) is None, "no environment: no default target"


def test_targets_from_the_app_settings_are_checked_like_manifests() -> None:
    good = {
        "name": "prod",
        "subscriptionId": SUB_B,
        "resourceGroup": "rg-prod",
        "environment": "cae-prod",
        "path": "envs/prod/",
        "overrides": {"intervalSeconds": 60, "protectedApps": ["keep-me"]},
    }
    bad = {"name": "Prod", "subscriptionId": "x", "resourceGroup": "rg", "environment": "e-1"}
    bad["path"] = "../up"
    targets, errors = from_settings(json.dumps([good, bad, "nope"]))
    assert [t.name for t in targets] == ["prod"]
    assert targets[0].path == "envs/prod" and dict(targets[0].overrides)["protectedApps"] == ("keep-me",)
    assert any(e.startswith("SYNOSCD_TARGETS[1].name: target name 'Prod' is invalid") for e in errors), errors
    assert any(e.startswith("SYNOSCD_TARGETS[1].subscriptionId: subscription id 'x'") for e in errors)
    assert any(e.startswith("SYNOSCD_TARGETS[1].path: folder '../up' is invalid") for e in errors)
    assert any(e.startswith("SYNOSCD_TARGETS[2]: a target is a JSON object") for e in errors)
    none, broken = from_settings("{")
    assert none == [] and len(broken) == 1 and "SYNOSCD_TARGETS is not valid JSON" in broken[0]


def test_target_manifests_are_validated_with_file_line_and_field() -> None:
    files = {
        "targets/prod.yaml": target_yaml("prod", extra="  overrides:\n    prune: true\n").encode(),
        "targets/bad.yaml": target_yaml("default", "Bad_Env", extra="  overrides:\n    cpu: 1\n").encode(),
        "targets/twin.yaml": target_yaml("twin").encode(),
    }
    desired = load_desired(files)
    assert [r.name for r in desired.targets] == [], "prod and twin share environment and path: both refused"
    messages = {(e.file, e.field): e.message for e in desired.errors}
    assert "is the target of the app settings" in messages[("targets/bad.yaml", "metadata.name")]
    assert "not a valid Container Apps environment name" in messages[("targets/bad.yaml", "spec.environment")]
    assert "unknown field 'cpu'" in messages[("targets/bad.yaml", "spec.overrides.cpu")]
    assert "same environment from the same path" in messages[("targets/prod.yaml", "spec.environment")]
    alone = load_desired({"targets/prod.yaml": files["targets/prod.yaml"]})
    target = from_manifest(alone.targets[0])
    assert target.origin == "targets/prod.yaml:1" and dict(target.overrides) == {"prune": True}


def test_a_name_declared_twice_keeps_the_first_declaration_and_says_so() -> None:
    a = TargetDef("prod", SUB_A, "rg", "env", "a", origin="SYNOSCD_TARGETS[0]")
    b = TargetDef("prod", SUB_B, "rg", "env", "b", origin="targets/prod.yaml:1")
    fleet, errors = combine([a], [b])
    assert fleet == [a] and fleet[0].origin == "SYNOSCD_TARGETS[0]"
    assert errors == [
        "target prod (targets/prod.yaml:1) is already declared at SYNOSCD_TARGETS[0]; that declaration is "
        "used; rename or remove this one"
    ]


def test_a_target_round_trips_through_its_catalog_row() -> None:
    t = TargetDef("prod", SUB_A, "rg", "env", "envs/prod", (("protectedApps", ("a", "b")),), "x.yaml:1")
    assert TargetDef.from_dict(json.loads(json.dumps(t.to_dict()))) == t


# -- state tables ---------------------------------------------------------------------------------------


def test_the_default_target_keeps_the_table_of_single_environment_deployments() -> None:
    assert table_name("synoscd", DEFAULT_TARGET) == "synoscd"
    assert table_name("synoscd", "prod-eu") != table_name("synoscd", "prodeu")


target_names = st.from_regex(r"[a-z](?:[a-z0-9]|-(?=[a-z0-9])){0,30}[a-z0-9]", fullmatch=True).filter(
    lambda n: n != DEFAULT_TARGET
)


@given(st.lists(target_names, min_size=2, max_size=8, unique=True), st.sampled_from(["synoscd", "x" * 60]))
def test_every_target_gets_a_valid_table_of_its_own(names: list[str], base: str) -> None:
    tables = [table_name(base, n) for n in names]
    assert len(set(tables)) == len(tables)
    for table in tables:
        assert re.fullmatch(r"[A-Za-z][A-Za-z0-9]{2,62}", table), table
        assert table != base


def test_a_targets_settings_are_its_place_path_table_and_overrides() -> None:
    base = settings(reconcile_interval_seconds=300, prune_enabled=False)
    target = TargetDef(
        "prod",
        SUB_B,
        "rg-prod",
        "cae-prod",
        "envs/prod",
        (("intervalSeconds", 60), ("protectedApps", ("gate", "db")), ("prune", True)),
    )
    mine = settings_for(base, target)
    assert (mine.target, mine.azure_subscription_id, mine.azure_resource_group) == ("prod", SUB_B, "rg-prod")
    assert mine.azure_container_app_environment == "cae-prod" and mine.github_config_path == "envs/prod"
    assert mine.state_table == table_name("synoscd", "prod")
    assert mine.reconcile_interval_seconds == 60 and mine.prune_enabled is True
    assert mine.protected_apps == frozenset({"gate", "db"})
    assert mine.source_label.endswith(":envs/prod")
    assert base.reconcile_interval_seconds == 300, "the deployment's settings are untouched"


# -- which targets a push touched --------------------------------------------------------------------------


def test_a_push_runs_the_targets_whose_folder_or_watched_files_it_touched() -> None:
    a = TargetDef("a", SUB_A, "rg", "env-a", "envs/a")
    b = TargetDef("b", SUB_A, "rg", "env-b", "envs/b")
    c = TargetDef("c", SUB_B, "rg", "env-c", "envs/c")
    fleet = [a, b, c]
    assert touched(fleet, ["envs/a/web.yaml"]) == [a]
    assert touched(fleet, ["envs/ab/web.yaml", "README.md"]) == [], "a sibling folder is not the folder"
    assert touched(fleet, ["envs/b/x.yaml", "envs/c"]) == [b, c]
    assert touched(fleet, ["config/shared.json"], {"c": ["config/shared.json"]}) == [c]
    assert touched(fleet, None) == fleet, "a push that does not list its files runs every target"
    root = TargetDef("r", SUB_A, "rg", "env-r", "")
    assert touched([root], ["anything.yaml"]) == [root], "a target at the repository root sees every file"


# -- ownership by target ---------------------------------------------------------------------------


def _live(tags: dict[str, str]) -> dict[str, object]:
    return {
        "tags": {"synoscd-managed": "true", "synoscd-source": "o/r:apps", **tags},
        "properties": {"environmentId": ENV_ID},
    }


def test_a_target_owns_what_carries_its_tag_and_the_default_target_what_carries_none() -> None:
    untagged, prod = _live({}), _live({TARGET_TAG: "prod"})
    assert target_of(untagged) == DEFAULT_TARGET and target_of(prod) == "prod"
    assert ownership("App", "web", untagged, ENV_ID, "o/r:apps").ours
    assert ownership("App", "web", prod, ENV_ID, "o/r:apps", "prod").ours
    theirs = ownership("App", "web", prod, ENV_ID, "o/r:apps")
    assert (theirs.ours, theirs.reason) == (False, "foreign-owner") and "target prod" in theirs.message
    older = ownership("App", "web", untagged, ENV_ID, "o/r:apps", "prod")
    assert older.reason == "foreign-owner" and "synos adopt --target prod web" in older.message
    other_env = ownership("App", "web", prod, ENV_ID.replace("env-a", "env-b"), "o/r:apps", "prod")
    assert not other_env.ours, "the environment and source checks still apply"


def _app(tags: int = 0) -> App:
    doc = {
        "apiVersion": "synoscd.io/v1alpha1",
        "kind": "App",
        "metadata": {"name": "web"},
        "spec": {
            "containers": [{"name": "web", "image": "nginx:1", "cpu": 0.25, "memory": "0.5Gi"}],
            "tags": {f"t{i}": "v" for i in range(tags)},
        },
    }
    return App.model_validate(doc)


def test_only_a_named_target_writes_the_target_tag() -> None:
    default = app_envelope(_app(), Target(ENV_ID, "eastus", "o/r:apps", "r1"))
    named = app_envelope(_app(), Target(ENV_ID, "eastus", "o/r:apps", "r1", "prod"))
    assert TARGET_TAG not in default["tags"], "the default target's resources stay as they were"
    assert named["tags"][TARGET_TAG] == "prod"


def test_a_named_target_refuses_a_resource_with_no_room_for_its_tag_and_misplaced_targets() -> None:
    def app_yaml(name: str, tags: int) -> bytes:
        lines = "".join(f"    t{i}: v\n" for i in range(tags))
        return (
            f"apiVersion: synoscd.io/v1alpha1\nkind: App\nmetadata:\n  name: {name}\nspec:\n"
            f"  containers:\n    - name: web\n      image: nginx:1\n      cpu: 0.25\n      memory: 0.5Gi\n"
            f"  tags:\n{lines}"
        ).encode()

    files = {
        "envs/a/full.yaml": app_yaml("full", 47),
        "envs/a/fits.yaml": app_yaml("fits", 46),
        "envs/a/lost.yaml": target_yaml("lost", env="cae-lost").encode(),
        "targets/ok.yaml": target_yaml("ok").encode(),
    }
    desired = load_desired(files)
    assert desired.complete
    default = fit_target(desired, DEFAULT_TARGET, "targets")
    assert {r.name for r in default.resources} == {"full", "fits"}
    assert [(e.file, e.field) for e in default.errors] == [("envs/a/lost.yaml", "kind")]
    named = fit_target(desired, "prod", "targets")
    assert {r.name for r in named.resources} == {"fits"} and not named.complete
    full = next(e for e in named.errors if e.file == "envs/a/full.yaml")
    assert full.field == "spec.tags" and "use at most 46" in full.message


# -- validated documents are cached by content (cheaper passes) ---------------------------------------


def test_only_documents_that_changed_are_validated_again(monkeypatch: object) -> None:
    import pytest

    from synoscd.manifests import desired as d

    mp = pytest.MonkeyPatch()
    seen: list[str] = []
    real = d._validate_workload

    def counting(entry: object, project: object) -> None:
        seen.append(entry.name)  # type: ignore[attr-defined]
        real(entry, project)  # type: ignore[arg-type]

    mp.setattr(d, "_validate_workload", counting)
    try:
        d.clear_parse_cache()

        def app(name: str, image: str = "nginx:1") -> bytes:
            head = f"apiVersion: synoscd.io/v1alpha1\nkind: App\nmetadata:\n  name: {name}\nspec:\n"
            body = f"  containers:\n    - name: web\n      image: {image}\n"
            body += "      cpu: 0.25\n      memory: 0.5Gi\n"
            return (head + body).encode()

        files = {f"apps/a{i}.yaml": app(f"a{i}") for i in range(5)}
        first = load_desired(files)
        assert sorted(seen) == [f"a{i}" for i in range(5)]
        seen.clear()
        again = load_desired({**files, "apps/a3.yaml": app("a3", "nginx:2")})
        assert seen == ["a3"], "only the changed document is validated again"
        assert [r.name for r in again.resources] == [r.name for r in first.resources]
        assert again.get("App", "a3").manifest.spec.containers[0].image == "nginx:2"  # type: ignore[union-attr]
        assert again.get("App", "a1") == first.get("App", "a1")
        # A project's defaults change what its apps validate to: its apps are validated again.
        seen.clear()
        project = (
            b"apiVersion: synoscd.io/v1alpha1\nkind: Project\nmetadata:\n  name: p\nspec:\n  apps: [a1]\n"
        )
        load_desired({**files, "apps/p.yaml": project})
        assert seen == ["a1"]
        # Errors come back from the cache as they were found.
        bad = {**files, "apps/bad.yaml": app("bad", "nginx:1").replace(b"cpu: 0.25", b"cpu: 0.3")}
        errors = [e.message for e in load_desired(bad).errors]
        assert errors and [e.message for e in load_desired(bad).errors] == errors
    finally:
        mp.undo()
        d.clear_parse_cache()
