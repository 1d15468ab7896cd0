"""load_desired as a whole: several files, duplicates, projects (defaults, policy), the report, read_tree."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest

from synoscd.manifests import App, ManifestError, load_desired, read_tree, validation_report
from synoscd.manifests import desired as desired_module

# The App manifest of the SynosCD README, unchanged.
README_APP = """\
apiVersion: synoscd.io/v1alpha1
kind: App
metadata:
  name: demo-app
  labels:
    synoscd.io/managed: "true"
spec:
  containers:
  - name: app
    image: mcr.microsoft.com/azuredocs/containerapps-helloworld:latest
    cpu: 0.25
    memory: 0.5Gi
  ingress:
    enabled: true
    external: true
    targetPort: 80
  scale:
    minReplicas: 1
    maxReplicas: 3
  suspend: false
"""

# The README shape with every field the issue names: namespace, environment from a secret,
# allowedOrigins, secrets as Key Vault resource IDs.
README_SHAPE = """\
apiVersion: synoscd.io/v1alpha1
kind: App
metadata:
  name: demo-app
  namespace: demo
  labels:
    synoscd.io/managed: "true"
spec:
  containers:
  - name: app
    image: mcr.microsoft.com/azuredocs/containerapps-helloworld:latest
    cpu: 0.25
    memory: 0.5Gi
  environment:
  - name: DB_PASSWORD
    valueFrom:
      secretRef: db-password
  ingress:
    enabled: true
    external: true
    targetPort: 80
    allowedOrigins:
    - https://demo.example.com
  scale:
    minReplicas: 1
    maxReplicas: 3
  secrets:
    db-password: /subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/demo-rg/providers/Microsoft.KeyVault/vaults/Demo-KV/secrets/db-password
  suspend: false
"""  # noqa: E501 - a Key Vault resource ID is one long line


def app(
    name: str, spec: str = "", *, image: str = "nginx:1.27", cpu: str = "0.25", memory: str = "0.5Gi"
) -> bytes:
    return (
        f"apiVersion: synoscd.io/v1alpha1\nkind: App\nmetadata:\n  name: {name}\nspec:\n  containers:\n"
        f"    - name: app\n      image: {image}\n      cpu: {cpu}\n      memory: {memory}\n"
        + textwrap.indent(textwrap.dedent(spec).lstrip("\n"), "  ")
    ).encode()


def project(name: str, body: str) -> bytes:
    return (
        f"apiVersion: synoscd.io/v1alpha1\nkind: Project\nmetadata:\n  name: {name}\nspec:\n"
        + textwrap.indent(textwrap.dedent(body).lstrip("\n"), "  ")
    ).encode()


def test_readme_app_validates_unchanged() -> None:
    desired = load_desired({"apps/demo.yaml": README_APP.encode()})
    assert desired.errors == [] and desired.complete
    [resource] = desired.resources
    assert (resource.kind, resource.name, resource.file, resource.line) == (
        "App",
        "demo-app",
        "apps/demo.yaml",
        1,
    )
    assert isinstance(resource.manifest, App)
    spec = resource.manifest.spec
    assert resource.manifest.metadata.labels == {"synoscd.io/managed": "true"}
    assert (spec.containers[0].cpu, spec.containers[0].memory) == (0.25, "0.5Gi")
    assert spec.ingress is not None and (
        spec.ingress.enabled,
        spec.ingress.external,
        spec.ingress.target_port,
    ) == (True, True, 80)
    assert spec.scale is not None and (spec.scale.min_replicas, spec.scale.max_replicas) == (1, 3)
    assert spec.suspend is False


def test_readme_shape_validates_and_key_vault_ids_become_urls() -> None:
    desired = load_desired({"apps/demo.yaml": README_SHAPE.encode()})
    assert desired.errors == []
    manifest = desired.resources[0].manifest
    assert isinstance(manifest, App)
    assert manifest.metadata.namespace == "demo"
    assert manifest.spec.secrets == {"db-password": "https://demo-kv.vault.azure.net/secrets/db-password"}
    assert manifest.spec.environment[0].value_from is not None
    assert manifest.spec.environment[0].value_from.secret_ref == "db-password"
    assert manifest.spec.ingress is not None and manifest.spec.ingress.allowed_origins == [
        "https://demo.example.com"
    ]


def test_key_vault_urls_are_kept_as_they_are() -> None:
    url = "https://kv-one.vault.azure.net/secrets/db/0123456789abcdef"
    desired = load_desired({"a.yaml": app("web", f"secrets:\n  db: {url}/\n")})
    assert desired.resources[0].manifest.spec.secrets == {"db": url}


def test_only_yaml_files_are_read() -> None:
    desired = load_desired(
        {
            "apps/web.yml": app("web"),
            "apps/API.YAML": app("api"),
            "README.md": b"\xff not yaml",
            "apps/x.json": b"{",
        }
    )
    assert desired.errors == []
    assert sorted(r.name for r in desired.resources) == ["api", "web"]


def test_one_bad_file_or_document_hides_no_other_error() -> None:
    desired = load_desired(
        {
            "a.yaml": b"\xff\xfe",
            "b.yaml": app("good-b") + b"---\n" + app("bad-b", cpu="0.3") + b"---\n[unclosed\n",
            "c.yaml": app("Bad-C"),
            "d.yaml": app("good-d"),
        }
    )
    assert [(e.file, e.line, e.field) for e in desired.errors] == [
        ("a.yaml", 1, ""),
        ("b.yaml", 20, "spec.containers[0].cpu"),
        ("b.yaml", 24, ""),
        ("c.yaml", 4, "metadata.name"),
    ]
    assert sorted(r.name for r in desired.resources) == ["good-b", "good-d"]
    assert not desired.complete


def test_the_same_kind_and_name_twice_is_an_error_at_both_places() -> None:
    desired = load_desired(
        {"apps/a.yaml": app("web"), "apps/b.yaml": b"# copy\n" + app("web"), "apps/c.yaml": app("api")}
    )
    assert desired.errors == [
        ManifestError(
            "apps/a.yaml",
            4,
            "metadata.name",
            "App 'web' is also defined at apps/b.yaml:5; each App name must be unique, rename or remove one",
        ),
        ManifestError(
            "apps/b.yaml",
            5,
            "metadata.name",
            "App 'web' is also defined at apps/a.yaml:4; each App name must be unique, rename or remove one",
        ),
    ]
    assert [r.name for r in desired.resources] == ["api"]


def test_duplicates_in_one_file_and_three_places() -> None:
    files = {"a.yaml": app("web") + b"---\n" + app("web"), "b.yaml": app("web")}
    messages = [(e.file, e.line, e.message) for e in load_desired(files).errors]
    assert messages == [
        (
            "a.yaml",
            4,
            "App 'web' is also defined at a.yaml:15, b.yaml:4; each App name must be unique, rename or "
            "remove one",
        ),
        (
            "a.yaml",
            15,
            "App 'web' is also defined at a.yaml:4, b.yaml:4; each App name must be unique, rename or "
            "remove one",
        ),
        (
            "b.yaml",
            4,
            "App 'web' is also defined at a.yaml:4, a.yaml:15; each App name must be unique, rename or "
            "remove one",
        ),
    ]


def test_a_duplicate_is_found_even_when_the_documents_are_otherwise_invalid() -> None:
    errors = load_desired({"a.yaml": app("web", cpu="9"), "b.yaml": app("web", image="nginx")}).errors
    assert [(e.file, e.field) for e in errors] == [
        ("a.yaml", "metadata.name"),
        ("a.yaml", "spec.containers[0].cpu"),
        ("b.yaml", "metadata.name"),
        ("b.yaml", "spec.containers[0].image"),
    ]


def test_an_app_and_a_job_may_share_a_name() -> None:
    job = app("web").replace(b"kind: App", b"kind: Job")
    desired = load_desired({"a.yaml": app("web"), "b.yaml": job})
    assert desired.errors == []
    assert [(r.kind, r.name) for r in desired.resources] == [("App", "web"), ("Job", "web")]


# --- projects ----------------------------------------------------------------------------------


def test_project_defaults_are_deep_merged_and_the_app_wins() -> None:
    files = {
        "apps/web.yaml": app(
            "web",
            """
            environment:
              - {name: REGION, value: westeurope}
              - {name: OWN, value: "1"}
            scale: {minReplicas: 2}
            tags: {team: web}
            registries: [{server: own.azurecr.io, identity: system}]
            """,
        ),
        "projects/p.yaml": project(
            "platform",
            """
            apps: [web]
            defaults:
              environment:
                - {name: REGION, value: northeurope}
                - {name: LOG_LEVEL, value: info}
              scale: {minReplicas: 1, maxReplicas: 7}
              tags: {team: platform, cost-center: "42"}
              registries: [{server: shared.azurecr.io, identity: system}]
              suspend: true
            """,
        ),
    }
    desired = load_desired(files)
    assert desired.errors == []
    [resource] = desired.resources
    spec = resource.manifest.spec
    assert resource.project == "platform"
    assert [(e.name, e.value) for e in spec.environment] == [
        ("REGION", "westeurope"),
        ("OWN", "1"),
        ("LOG_LEVEL", "info"),
    ]
    assert spec.scale is not None and (spec.scale.min_replicas, spec.scale.max_replicas) == (2, 7)
    assert spec.tags == {"team": "web", "cost-center": "42"}
    assert [r.server for r in spec.registries] == ["own.azurecr.io"]  # other lists: the app's replaces
    assert spec.suspend is True
    assert [p.name for p in desired.projects] == ["platform"]


def test_containers_merge_by_name() -> None:
    files = {
        "web.yaml": app("web", cpu="0.25", memory="0.5Gi"),
        "p.yaml": project(
            "p",
            """
            apps: [web]
            defaults:
              containers:
                - {name: app, image: "ignored:1", cpu: 1, memory: 2Gi, args: [--verbose]}
                - {name: proxy, image: "envoy:1.30", cpu: 0.25, memory: 0.5Gi}
            """,
        ),
    }
    desired = load_desired(files)
    assert desired.errors == []
    containers = desired.resources[0].manifest.spec.containers
    assert [(c.name, c.image, c.cpu, c.args) for c in containers] == [
        ("app", "nginx:1.27", 0.25, ["--verbose"]),
        ("proxy", "envoy:1.30", 0.25, []),
    ]


def test_an_explicit_empty_list_in_the_app_wins() -> None:
    files = {
        "web.yaml": app("web", "environment: []\n"),
        "p.yaml": project("p", "apps: [web]\ndefaults:\n  environment: [{name: A, value: b}]\n"),
    }
    assert load_desired(files).resources[0].manifest.spec.environment == []


def test_an_error_in_a_default_points_at_the_project() -> None:
    files = {
        "apps/web.yaml": app("web"),
        "apps/api.yaml": app("api"),
        "projects/p.yaml": project("p", "apps: [web, api]\ndefaults:\n  scale:\n    maxReplicas: 5000\n"),
    }
    assert load_desired(files).errors == [
        ManifestError(
            "projects/p.yaml",
            9,
            "spec.defaults.scale.maxReplicas",
            f"maxReplicas 5000 is out of range; use a value from 1 to 1000 (from the defaults of project "
            f"'p', applied to App '{name}')",
        )
        for name in ("api", "web")
    ]


def test_a_rule_broken_by_a_default_points_at_the_project() -> None:
    files = {
        "apps/web.yaml": app("web"),
        "projects/p.yaml": project("p", "apps: [web]\ndefaults:\n  ingress: {}\n"),
    }
    assert load_desired(files).errors == [
        ManifestError(
            "projects/p.yaml",
            8,
            "spec.defaults.ingress.targetPort",
            "ingress is enabled but has no targetPort; add the port your container listens on "
            "(from the defaults of project 'p', applied to App 'web')",
        )
    ]


def test_policy_violations_are_errors_of_the_app_naming_the_project() -> None:
    files = {
        "apps/web.yaml": app("web", image="docker.io/library/nginx:1.27", cpu="2", memory="4Gi"),
        "apps/ok.yaml": app("ok", image="team.azurecr.io/ok:1"),
        "apps/free.yaml": app("free", image="nginx:1.27", cpu="4", memory="8Gi"),
        "projects/p.yaml": project(
            "strict",
            "apps: [web, ok]\npolicy:\n  allowedRegistries: ['*.azurecr.io']\n  maxCpu: 1\n  maxMemory: "
            "2048Mi\n",
        ),
    }
    desired = load_desired(files)
    assert desired.errors == [
        ManifestError(
            "apps/web.yaml",
            8,
            "spec.containers[0].image",
            "image registry 'docker.io' is not allowed by project 'strict'; use an image from: *.azurecr.io",
        ),
        ManifestError(
            "apps/web.yaml",
            9,
            "spec.containers[0].cpu",
            "cpu 2 (total over all containers) exceeds maxCpu 1 of project 'strict'; lower it",
        ),
        ManifestError(
            "apps/web.yaml",
            10,
            "spec.containers[0].memory",
            "memory 4Gi (total over all containers) exceeds maxMemory 2Gi of project 'strict'; lower it",
        ),
    ]
    assert sorted(r.name for r in desired.resources) == ["free", "ok"]


def test_policy_totals_over_several_containers_point_at_the_list() -> None:
    web = app(
        "web",
        "  - {name: b, image: 'x.azurecr.io/b:1', cpu: 0.75, memory: 1.5Gi}\n",
        image="x.azurecr.io/a:1",
    )
    web = web.replace(b"      memory: 0.5Gi\n  - {", b"      memory: 0.5Gi\n    - {")
    files = {"web.yaml": web, "p.yaml": project("p", "apps: [web]\npolicy: {maxCpu: 0.5}\n")}
    assert load_desired(files).errors == [
        ManifestError(
            "web.yaml",
            6,
            "spec.containers",
            "cpu 1 (total over all containers) exceeds maxCpu 0.5 of project 'p'; lower it",
        )
    ]


def test_an_empty_registry_allow_list_allows_nothing() -> None:
    files = {"web.yaml": app("web"), "p.yaml": project("p", "apps: [web]\npolicy: {allowedRegistries: []}\n")}
    [error] = load_desired(files).errors
    assert (
        error.message == "image registry 'docker.io' is not allowed by project 'p'; use an image from: none"
    )


def test_projects_do_not_govern_jobs() -> None:
    job = app("task", image="docker.io/busybox:1").replace(b"kind: App", b"kind: Job")
    files = {"task.yaml": job, "p.yaml": project("p", "apps: [task]\npolicy: {allowedRegistries: []}\n")}
    desired = load_desired(files)
    assert desired.errors == [] and desired.resources[0].project is None


def test_listing_an_app_that_does_not_exist_is_fine() -> None:
    desired = load_desired({"p.yaml": project("p", "apps: [not-yet]\n")})
    assert desired.errors == [] and [p.name for p in desired.projects] == ["p"]


def test_unknown_default_fields_are_the_projects_error_only() -> None:
    files = {
        "web.yaml": app("web"),
        "p.yaml": project("p", "apps: [web]\ndefaults:\n  ingres: {external: true}\n"),
    }
    assert load_desired(files).errors == [
        ManifestError(
            "p.yaml", 8, "spec.defaults.ingres", "unknown field 'ingres' in defaults; did you mean 'ingress'?"
        ),
        ManifestError(
            "web.yaml",
            4,
            "metadata.name",
            "project 'p' (p.yaml:4) lists this app but has errors; fix them first",
        ),
    ]


def test_an_app_in_two_projects_is_an_error_at_both_listings() -> None:
    files = {
        "web.yaml": app("web"),
        "a.yaml": project("team-a", "apps: [web]\n"),
        "b.yaml": project("team-b", "apps:\n  - api\n  - web\n"),
    }
    assert load_desired(files).errors == [
        ManifestError(
            "a.yaml",
            6,
            "spec.apps[0]",
            "app 'web' is also listed in project 'team-b' (b.yaml:4); list each app in one project only",
        ),
        ManifestError(
            "b.yaml",
            8,
            "spec.apps[1]",
            "app 'web' is also listed in project 'team-a' (a.yaml:4); list each app in one project only",
        ),
        ManifestError(
            "web.yaml",
            4,
            "metadata.name",
            "project 'team-a' (a.yaml:4) lists this app but has errors; fix them first",
        ),
    ]


def test_project_shape_errors() -> None:
    errors = load_desired(
        {"p.yaml": project("p", "apps: [web, web, Bad]\npolicy: {maxMemory: 4GB, other: 1}\n")}
    ).errors
    assert [(e.line, e.field, e.message) for e in errors] == [
        (
            6,
            "spec.apps[2]",
            "name 'Bad' is not a valid Container Apps name; use 2-32 lowercase letters, digits and '-', "
            "starting with a letter, ending with a letter or digit, without '--'",
        ),
        (
            7,
            "spec.policy.maxMemory",
            "memory '4GB' is not valid; use a number followed by Gi or Mi, e.g. 0.5Gi or 512Mi",
        ),
        (
            7,
            "spec.policy.other",
            "unknown field 'other'; remove it (allowed: allowedRegistries, maxCpu, maxMemory)",
        ),
    ]
    errors = load_desired({"p.yaml": project("p", "apps: [web, web]\n")}).errors
    assert errors == [
        ManifestError(
            "p.yaml", 6, "spec.apps[1]", "app 'web' appears twice (also at [0]); remove or rename one"
        )
    ]


# --- report, robustness, read_tree -------------------------------------------------------------


def test_validation_report_shape() -> None:
    desired = load_desired(
        {
            "apps/web.yaml": app("web"),
            "apps/bad.yaml": app("bad", cpu="0.3"),
            "p.yaml": project("p", "apps: [web]\n"),
        }
    )
    report = validation_report(desired)
    assert report == {
        "valid": False,
        "resources": [
            {"kind": "App", "name": "web", "file": "apps/web.yaml"},
            {"kind": "Project", "name": "p", "file": "p.yaml"},
        ],
        "errors": [
            {
                "file": "apps/bad.yaml",
                "line": 9,
                "field": "spec.containers[0].cpu",
                "message": "cpu 0.3 and memory 0.5Gi (totals over all containers) are not a valid pair; "
                "use one of 0.25/0.5Gi, 0.5/1Gi, 0.75/1.5Gi, 1/2Gi, ... 4/8Gi",
            }
        ],
    }
    assert json.loads(json.dumps(report)) == report
    assert validation_report(load_desired({})) == {"valid": True, "resources": [], "errors": []}


def test_errors_per_file_are_capped() -> None:
    desired = load_desired({"many.yaml": b"---\na: 1\n" * 60, "b.yaml": app("Bad")})
    errors = [e for e in desired.errors if e.file == "many.yaml"]
    assert len(errors) == 101
    assert errors[-1] == ManifestError(
        "many.yaml", 102, "", "20 more errors in this file; fix the ones above first"
    )
    assert [e.file for e in desired.errors].count("b.yaml") == 1


def test_an_unexpected_exception_becomes_an_error_of_that_document(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(manifest: App) -> list[object]:
        if manifest.metadata.name == "web":
            raise RuntimeError("bug")
        return []

    monkeypatch.setattr(desired_module, "check_app", boom)
    desired = load_desired({"a.yaml": app("web"), "b.yaml": app("api")})
    assert desired.errors == [
        ManifestError("a.yaml", 1, "", "internal error while validating (RuntimeError); please report it")
    ]
    assert [r.name for r in desired.resources] == ["api"]


def test_read_tree(tmp_path: Path) -> None:
    (tmp_path / "apps" / "sub").mkdir(parents=True)
    (tmp_path / "apps" / "web.yaml").write_bytes(app("web"))
    (tmp_path / "apps" / "sub" / "api.yml").write_bytes(app("api"))
    (tmp_path / "apps" / "notes.txt").write_text("x")
    (tmp_path / ".github" / "workflows").mkdir(parents=True)
    (tmp_path / ".github" / "workflows" / "ci.yaml").write_text("on: push\n")
    (tmp_path / "apps" / ".hidden.yaml").write_text("x: 1\n")
    outside = tmp_path.parent / f"{tmp_path.name}-outside.yaml"
    outside.write_bytes(app("outside"))
    os.symlink(outside, tmp_path / "apps" / "escape.yaml")
    os.symlink(tmp_path / "apps" / "web.yaml", tmp_path / "apps" / "alias.yaml")
    os.symlink(tmp_path.parent, tmp_path / "apps" / "parent")
    (tmp_path / "big.yaml").write_bytes(b"x" * 1000)

    files = read_tree(tmp_path, max_file_bytes=500)
    assert sorted(files) == ["apps/alias.yaml", "apps/sub/api.yml", "apps/web.yaml", "big.yaml"]
    assert files["apps/web.yaml"] == app("web")
    assert len(files["big.yaml"]) == 501  # enough to be reported as too large, no more
    desired = load_desired(files, max_file_bytes=500)
    # The in-tree link is read like any file, so it duplicates web.yaml.
    assert [(e.file, e.line, e.field) for e in desired.errors] == [
        ("apps/alias.yaml", 4, "metadata.name"),
        ("apps/web.yaml", 4, "metadata.name"),
        ("big.yaml", 1, ""),
    ]
    assert desired.errors[-1].message == "file is larger than 500 bytes; split it into smaller files"


def test_read_tree_of_the_good_corpus_validates() -> None:
    root = Path(__file__).resolve().parents[1] / "corpus" / "good"
    desired = load_desired(read_tree(root))
    assert desired.errors == []
    assert sorted((r.kind, r.name) for r in desired.resources) == [
        ("App", "admin-ui"),
        ("App", "demo-app"),
        ("App", "orders-api"),
        ("App", "orders-worker"),
        ("App", "static-site"),
        ("Job", "nightly-report"),
        ("Job", "orders-migrate"),
    ]
    assert [p.name for p in desired.projects] == ["shop"]
    assert desired.get("App", "orders-api") is not None and desired.get("App", "orders-api").project == "shop"  # type: ignore[union-attr]
    readme = (root / "apps" / "demo-app.yaml").read_text()
    assert readme == README_APP
