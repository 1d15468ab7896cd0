"""Guardrails Git cannot switch off, inputs that reach out or blow up, and what a pass reports.

- Project policy applies whatever the sync options say; operator guardrails (runtime settings) apply to
  every App and Job, in a Project or not; both are validation errors at file:line:field.
- Key Vault secret URLs must name an allowed vault host.
- A typo in a `synoscd.io/` annotation is a validation error, never silently ignored.
- `SYNOSCD_GITHUB_CONFIG_PATH` of `.` or `/` is the repository root.
- A pass that skipped a drifted app (backoff, sync failed) is `partial`, never `succeeded`.
"""

from __future__ import annotations

import textwrap

import pytest
from hypothesis import given
from hypothesis import strategies as st

from synoscd.engine.execute import Outcome
from synoscd.engine.plan import Action, Plan
from synoscd.engine.reconcile import PassResult
from synoscd.manifests import ManifestError, load_desired
from synoscd.manifests.desired import apply_guardrails
from synoscd.manifests.policy import Guardrails
from synoscd.manifests.schema import Policy
from synoscd.sources.snapshot import is_manifest


def app(name: str, spec: str = "", *, image: str = "nginx:1.27", cpu: str = "0.25", memory: str = "0.5Gi",
        annotations: str = "", kind: str = "App") -> bytes:  # fmt: skip
    notes = f"  annotations:\n{textwrap.indent(annotations, '    ')}" if annotations else ""
    return (
        f"apiVersion: synoscd.io/v1alpha1\nkind: {kind}\nmetadata:\n  name: {name}\n{notes}spec:\n"
        f"  containers:\n    - name: app\n      image: {image}\n      cpu: {cpu}\n      memory: {memory}\n"
        + textwrap.indent(textwrap.dedent(spec).lstrip("\n"), "  ")
    ).encode()


def project(name: str, body: str) -> bytes:
    return (
        f"apiVersion: synoscd.io/v1alpha1\nkind: Project\nmetadata:\n  name: {name}\nspec:\n"
        + textwrap.indent(textwrap.dedent(body).lstrip("\n"), "  ")
    ).encode()


def where(errors: list[ManifestError]) -> list[tuple[str, int, str]]:
    return [(e.file, e.line, e.field) for e in errors]


# -- project policy is not an advisory check -------------------------------------------------------


def test_project_policy_applies_even_with_validate_false() -> None:
    files = {
        "apps/web.yaml": app(
            "web",
            image="docker.io/evil/miner:1",
            cpu="4",
            memory="8Gi",
            annotations="synoscd.io/sync-options: Validate=false\n",
        ),
        "projects/p.yaml": project(
            "strict",
            "apps: [web]\npolicy:\n  allowedRegistries: ['*.azurecr.io']\n  maxCpu: 1\n  maxMemory: 2Gi\n",
        ),
    }
    desired = load_desired(files)
    assert where(desired.errors) == [
        ("apps/web.yaml", 10, "spec.containers[0].image"),
        ("apps/web.yaml", 11, "spec.containers[0].cpu"),
        ("apps/web.yaml", 12, "spec.containers[0].memory"),
    ]
    assert all("project 'strict'" in e.message for e in desired.errors)
    assert desired.resources == [] and not desired.complete


def test_validate_false_still_skips_the_advisory_cpu_memory_pair_check() -> None:
    files = {"apps/web.yaml": app("web", cpu="0.3", annotations="synoscd.io/sync-options: Validate=false\n")}
    assert load_desired(files).errors == []


# -- operator guardrails: every App and Job, in a Project or not -----------------------------------

GUARDS = Guardrails(
    Policy.model_validate({"allowedRegistries": ["*.azurecr.io"], "maxCpu": 1, "maxMemory": "2Gi"})
)


def test_operator_guardrails_apply_to_apps_and_jobs_outside_every_project() -> None:
    files = {
        "apps/web.yaml": app("web", image="docker.io/library/nginx:1.27", cpu="2", memory="4Gi"),
        "jobs/task.yaml": app("task", "replicaTimeout: 60\n", image="ghcr.io/x/task:1", kind="Job"),
        "apps/ok.yaml": app("ok", image="team.azurecr.io/ok:1"),
    }
    guarded = apply_guardrails(load_desired(files), GUARDS)
    assert [r.name for r in guarded.resources] == ["ok"]
    assert not guarded.complete, "a blocked resource makes the set incomplete: no prune"
    assert where(guarded.errors) == [
        ("apps/web.yaml", 8, "spec.containers[0].image"),
        ("apps/web.yaml", 9, "spec.containers[0].cpu"),
        ("apps/web.yaml", 10, "spec.containers[0].memory"),
        ("jobs/task.yaml", 8, "spec.containers[0].image"),
    ]
    assert guarded.errors[0].message == (
        "image registry 'docker.io' is not allowed by the operator guardrails; use an image from: "
        "*.azurecr.io (synos set --allowed-registries)"
    )
    assert "exceeds maxCpu 1 of the operator guardrails" in guarded.errors[1].message


def test_operator_guardrails_also_bind_apps_of_a_project_with_validate_false() -> None:
    files = {
        "apps/web.yaml": app(
            "web",
            image="docker.io/library/nginx:1.27",
            annotations="synoscd.io/sync-options: Validate=false\n",
        ),
        "p.yaml": project("loose", "apps: [web]\n"),
    }
    guarded = apply_guardrails(load_desired(files), GUARDS)
    assert where(guarded.errors) == [("apps/web.yaml", 10, "spec.containers[0].image")]


def test_a_default_from_a_project_is_reported_at_the_projects_line() -> None:
    files = {
        "apps/web.yaml": app("web", image="team.azurecr.io/web:1"),
        "p.yaml": project(
            "p",
            "apps: [web]\ndefaults:\n  containers:\n    - name: side\n      image: docker.io/side:1\n"
            "      cpu: 0.25\n      memory: 0.5Gi\n",
        ),
    }
    desired = load_desired(files)
    assert desired.errors == []
    guarded = apply_guardrails(desired, GUARDS)
    assert where(guarded.errors) == [("p.yaml", 10, "spec.defaults.containers[0].image")]


def test_no_guardrails_change_nothing() -> None:
    desired = load_desired({"apps/web.yaml": app("web", cpu="4", memory="8Gi")})
    assert apply_guardrails(desired, Guardrails()) == desired


# -- Key Vault hosts ----------------------------------------------------------------------------------


def test_secret_urls_must_name_an_allowed_vault() -> None:
    files = {
        "apps/web.yaml": app(
            "web",
            "secrets:\n  a: https://good.vault.azure.net/secrets/a\n"
            "  b: https://169.254.169.254/secrets/b\n"
            "  c: /subscriptions/0/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/other/secrets/c\n",
        ),
        "apps/ok.yaml": app("ok", "secrets:\n  a: https://GOOD.vault.azure.net/secrets/a/0123abcd\n"),
    }
    guarded = apply_guardrails(load_desired(files), Guardrails(vault_hosts=("good.vault.azure.net",)))
    assert [r.name for r in guarded.resources] == ["ok"]
    assert where(guarded.errors) == [
        ("apps/web.yaml", 13, "spec.secrets.b"),
        ("apps/web.yaml", 14, "spec.secrets.c"),
    ]
    assert guarded.errors[0].message == (
        "Key Vault host '169.254.169.254' is not allowed (allowed: good.vault.azure.net); use a vault "
        "of SYNOSCD_KEYVAULT_URL or SYNOSCD_KEYVAULT_ALLOWED_HOSTS"
    )
    assert "'other.vault.azure.net'" in guarded.errors[1].message


def test_vault_hosts_may_be_globs_and_ports_are_part_of_the_host() -> None:
    files = {
        "a.yaml": app("aa", "secrets:\n  s: https://team-a.vault.azure.net/secrets/s\n"),
        "b.yaml": app("bb", "secrets:\n  s: https://127.0.0.1:9443/secrets/s\n"),
        "c.yaml": app("cc", "secrets:\n  s: https://127.0.0.1:8443/secrets/s\n"),
    }
    guarded = apply_guardrails(
        load_desired(files), Guardrails(vault_hosts=("*.vault.azure.net", "127.0.0.1:9443"))
    )
    assert [r.name for r in guarded.resources] == ["aa", "bb"]
    assert where(guarded.errors) == [("c.yaml", 12, "spec.secrets.s")]


def test_no_vault_configured_allows_no_secret_url() -> None:
    files = {"a.yaml": app("aa", "secrets:\n  s: https://team-a.vault.azure.net/secrets/s\n")}
    [error] = apply_guardrails(load_desired(files), Guardrails(vault_hosts=())).errors
    assert "no Key Vault is configured" in error.message and "SYNOSCD_KEYVAULT_URL" in error.message


# -- synoscd.io/ annotations: a typo is an error ----------------------------------------------------

JOB_SPEC = "replicaTimeout: 60\n"


@pytest.mark.parametrize(
    "annotation,message",
    [
        (
            "synoscd.io/hook: PostSnyc",
            "unknown hook 'PostSnyc'; did you mean 'PostSync'? Use PreSync, Sync, PostSync, SyncFail or Skip",
        ),
        (
            "synoscd.io/hook: PreSync,PostSnyc",
            "unknown hook 'PostSnyc'; did you mean 'PostSync'? Use PreSync, Sync, PostSync, SyncFail or Skip",
        ),
        (
            "synoscd.io/hook-delete-policy: HookSucceded",
            "unknown hook delete policy 'HookSucceded'; did you mean 'HookSucceeded'? "
            "Use HookSucceeded, HookFailed or BeforeHookCreation",
        ),
        (
            "synoscd.io/sync-options: Prune=False",
            "unknown sync option 'Prune=False'; did you mean 'Prune=false'? "
            "Use Prune=false, Validate=false or PruneLast=true",
        ),
        (
            "synoscd.io/sync-wave: '1.5'",
            "sync wave '1.5' is not an integer; use an optional sign and digits, e.g. '-1' or '2'",
        ),
        (
            "synoscd.io/sync-wav: '1'",
            "unknown annotation 'synoscd.io/sync-wav'; did you mean 'synoscd.io/sync-wave'? Use "
            "synoscd.io/sync-wave, synoscd.io/hook, synoscd.io/hook-delete-policy or synoscd.io/sync-options",
        ),
    ],
)
def test_a_typo_in_a_sync_annotation_is_an_error_at_its_line(annotation: str, message: str) -> None:
    key = annotation.partition(":")[0]
    desired = load_desired({"jobs/m.yaml": app("mig", JOB_SPEC, kind="Job", annotations=annotation + "\n")})
    assert [(e.file, e.line, e.field, e.message) for e in desired.errors] == [
        ("jobs/m.yaml", 6, f'metadata.annotations["{key}"]', message)
    ]
    assert desired.resources == [], "a resource with a typo is not applied (in the wrong phase or wave)"


def test_validate_false_does_not_hide_an_annotation_typo() -> None:
    notes = "synoscd.io/sync-options: Validate=false\nsynoscd.io/hook: PostSnyc\n"
    desired = load_desired({"jobs/m.yaml": app("mig", JOB_SPEC, kind="Job", annotations=notes)})
    assert where(desired.errors) == [("jobs/m.yaml", 7, 'metadata.annotations["synoscd.io/hook"]')]


def test_well_formed_annotations_and_foreign_prefixes_are_fine() -> None:
    notes = (
        "synoscd.io/hook: PreSync, PostSync\nsynoscd.io/hook-delete-policy: HookSucceeded,HookFailed\n"
        "synoscd.io/sync-options: Prune=false, PruneLast=true\nsynoscd.io/sync-wave: '-3'\n"
        "example.com/anything: goes\n"
    )
    desired = load_desired({"jobs/m.yaml": app("mig", JOB_SPEC, kind="Job", annotations=notes)})
    assert desired.errors == [] and [r.name for r in desired.resources] == ["mig"]


# -- config path ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("config_path", ["", ".", "/", "./", "./apps/..", "//"])
def test_config_path_dot_or_slash_is_the_repository_root(config_path: str) -> None:
    assert is_manifest("apps/web.yaml", config_path)
    assert is_manifest("web.yml", config_path)
    assert not is_manifest("README.md", config_path)


@pytest.mark.parametrize("config_path", ["apps", "/apps/", "./apps", "apps/"])
def test_config_path_spellings_of_one_folder_agree(config_path: str) -> None:
    assert is_manifest("apps/web.yaml", config_path)
    assert not is_manifest("other/web.yaml", config_path)
    assert not is_manifest("apps-old/web.yaml", config_path)


# -- what a pass reports -------------------------------------------------------------------------------


def _result(*actions: Action, outcomes: tuple[Outcome, ...] = (), dry_run: bool = False) -> PassResult:
    result = PassResult(id="p", trigger="timer", dry_run=dry_run)
    result.plan = Plan("rev", tuple(actions), False, None)
    result.outcomes = list(outcomes)
    return result


@pytest.mark.parametrize("reason", ["backoff", "in-progress", "sync-failed"])
def test_a_pass_that_skipped_a_drifted_app_is_partial(reason: str) -> None:
    skipped = Action("App", "web", "skip", reason, message="drift; next try in 60 s")
    assert _result(skipped).outcome == "partial"


def test_a_pass_that_left_planned_writes_for_the_next_pass_is_partial() -> None:
    done = Action("App", "db", "create", "missing", wave=-1)
    waiting = Action("App", "web", "create", "missing", wave=0)
    assert _result(done, waiting, outcomes=(Outcome(done, "ok"),)).outcome == "partial"
    assert _result(done, outcomes=(Outcome(done, "ok"),)).outcome == "succeeded"


@given(st.sampled_from(["suspended", "protected", "prune-disabled"]))
def test_skips_an_operator_asked_for_do_not_make_a_pass_partial(reason: str) -> None:
    assert _result(Action("App", "web", "skip", reason), Action("App", "ok", "noop", "in-sync")).outcome == (
        "succeeded"
    )
