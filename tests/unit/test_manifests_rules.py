"""One test per validation rule: the exact message, file, line and field of each error.

A line that should carry an error is marked `# <-` in the YAML; markers are matched in order.
"""

from __future__ import annotations

import textwrap

import pytest

from synoscd.manifests import ManifestError, load_desired

FILE = "apps/web.yaml"
HEAD = "apiVersion: synoscd.io/v1alpha1\nkind: App\n"


def indent(block: str, by: int) -> str:
    return textwrap.indent(textwrap.dedent(block).lstrip("\n"), " " * by)


def app(
    spec: str = "",
    container: str = "",
    *,
    name: str = "web",
    image: str = "nginx:1.27",
    cpu: str = "0.25",
    memory: str = "0.5Gi",
    metadata: str = "",
) -> str:
    return (
        HEAD
        + f"metadata:\n  name: {name}\n"
        + indent(metadata, 2)
        + "spec:\n  containers:\n    - name: app\n"
        + f"      image: {image}\n      cpu: {cpu}\n      memory: {memory}\n"
        + indent(container, 6)
        + indent(spec, 2)
    )


def job(spec: str = "", *, name: str = "task") -> str:
    return (
        "apiVersion: synoscd.io/v1alpha1\nkind: Job\n"
        + f"metadata:\n  name: {name}\n"
        + "spec:\n  containers:\n    - name: job\n      image: busybox:1.36\n"
        + "      cpu: 0.25\n      memory: 0.5Gi\n"
        + indent(spec, 2)
    )


def errors(text: str, file: str = FILE) -> list[ManifestError]:
    return load_desired({file: text.encode()}).errors


def marks(text: str) -> list[int]:
    return [number for number, line in enumerate(text.splitlines(), 1) if "# <-" in line]


def expect(text: str, *found: tuple[str, str]) -> None:
    """The errors of `text` are exactly `found` (field, message), on the marked lines, in order."""
    lines = marks(text)
    assert len(lines) == len(found), "one # <- marker per expected error"
    assert errors(text) == [
        ManifestError(FILE, line, f, m) for line, (f, m) in zip(lines, found, strict=True)
    ]


def test_valid_app_has_no_errors() -> None:
    assert errors(app()) == []


# --- header ------------------------------------------------------------------------------------


def test_wrong_api_version_is_reported_and_the_rest_still_validated() -> None:
    text = (
        app(name="Web")
        .replace("synoscd.io/v1alpha1", "apps/v1  # <-")
        .replace("name: Web", "name: Web  # <-")
    )
    expect(
        text,
        ("apiVersion", "apiVersion 'apps/v1' is not supported; use synoscd.io/v1alpha1"),
        (
            "metadata.name",
            "name 'Web' is not a valid Container Apps name; use 2-32 lowercase letters, digits and '-', "
            "starting with a letter, ending with a letter or digit, without '--'",
        ),
    )


def test_missing_api_version() -> None:
    text = "# <-\n" + app().replace("apiVersion: synoscd.io/v1alpha1\n", "")
    assert errors(text) == [
        ManifestError(
            FILE, 2, "apiVersion", "missing required field 'apiVersion'; set it to synoscd.io/v1alpha1"
        )
    ]


def test_unknown_kind() -> None:
    expect(
        app().replace("kind: App", "kind: Deployment  # <-"),
        (
            "kind",
            "kind 'Deployment' is not supported; use App, Job, Project, Synthesizer, Composition or Target",
        ),
    )


def test_missing_kind() -> None:
    text = app().replace("kind: App\n", "")
    assert errors(text) == [
        ManifestError(
            FILE,
            1,
            "kind",
            "missing required field 'kind'; set it to App, Job, Project, Synthesizer, Composition or Target",
        )
    ]


@pytest.mark.parametrize(
    ("document", "what"), [("- a\n- b\n", "a list"), ("hello\n", "a string"), ("42\n", "a number")]
)
def test_document_must_be_a_mapping(document: str, what: str) -> None:
    assert errors(document) == [
        ManifestError(
            FILE, 1, "", f"document must be a mapping with apiVersion, kind, metadata and spec, got {what}"
        )
    ]


# --- shape (pydantic) --------------------------------------------------------------------------


def test_unknown_field_suggests_the_right_name() -> None:
    expect(
        app("ingress:\n  targetport: 80  # <-\n  target_port: 80  # <-\n"),
        ("spec.ingress.targetport", "unknown field 'targetport'; did you mean 'targetPort'?"),
        ("spec.ingress.target_port", "unknown field 'target_port'; did you mean 'targetPort'?"),
    )


def test_unknown_field_without_a_close_name_lists_the_allowed_ones() -> None:
    expect(
        app("replicas: 3  # <-\n"),
        (
            "spec.replicas",
            "unknown field 'replicas'; remove it (allowed: containers, environment, ingress, scale, secrets, "
            "externalSecrets, identity, registries, tags, suspend, configFrom, volumes, initContainers, "
            "workloadProfileName, activeRevisionsMode, maxInactiveRevisions, terminationGracePeriodSeconds)",
        ),
    )


def test_missing_required_fields() -> None:
    text = (
        HEAD + "metadata:  # <-\n  labels: {}\nspec:\n  containers:\n    - name: app  # <-\n      cpu: 0.25\n"
    )
    assert errors(text) == [
        ManifestError(FILE, 3, "metadata.name", "missing required field 'name'; add it"),
        ManifestError(FILE, 7, "spec.containers[0].image", "missing required field 'image'; add it"),
        ManifestError(
            FILE,
            7,
            "spec.containers[0].memory",
            "missing required field 'memory'; add it (cpu and memory totals must be a valid pair, "
            "e.g. cpu: 0.25 with memory: 0.5Gi)",
        ),
    ]


def test_missing_spec() -> None:
    assert errors(HEAD + "metadata:\n  name: web\n") == [
        ManifestError(FILE, 1, "spec", "missing required field 'spec'; add it")
    ]


def test_empty_container_list() -> None:
    text = HEAD + "metadata:\n  name: web\nspec:\n  containers: []  # <-\n"
    expect(text, ("spec.containers", "containers needs at least 1 item; add one"))


def test_wrong_types_say_what_was_expected() -> None:
    expect(
        app(
            """
            suspend: "false"  # <-
            ingress:
              targetPort: "80"  # <-
            scale: [1]  # <-
            tags:
              owner: 7  # <-
            """,
            metadata='labels:\n  "synoscd.io/managed": true  # <-\n',
        ),
        (
            'metadata.labels["synoscd.io/managed"]',
            "'synoscd.io/managed' must be a string, got true; quote the value",
        ),
        ("spec.suspend", "suspend must be true or false, got a string 'false'; remove the quotes"),
        (
            "spec.ingress.targetPort",
            "targetPort must be a whole number, got a string '80'; remove the quotes",
        ),
        ("spec.scale", "scale must be a mapping (key: value), got a list"),
        ("spec.tags.owner", "owner must be a string, got 7; quote the value"),
    )


def test_literal_values() -> None:
    expect(
        app("ingress:\n  targetPort: 80\n  transport: udp  # <-\n"),
        ("spec.ingress.transport", "transport must be 'auto', 'http', 'http2' or 'tcp', got 'udp'"),
    )


def test_an_unsupported_tag_is_reported_once() -> None:
    expect(
        app("tags:\n  owner: !Ref Owner  # <-\n"),
        ("spec.tags.owner", "unsupported YAML tag '!Ref'; remove it"),
    )


# --- names -------------------------------------------------------------------------------------

NAME_HINT = (
    "is not a valid Container Apps name; use 2-32 lowercase letters, digits and '-', "
    "starting with a letter, ending with a letter or digit, without '--'"
)


@pytest.mark.parametrize(
    "name",
    ["Web", "web_app", "my--app", "-web", "web-", "1web", "w", "a" * 33, "'web app'"],
)
def test_bad_names(name: str) -> None:
    text = app(name=name).replace(f"name: {name}", f"name: {name}  # <-")
    shown = name.strip("'")
    expect(text, ("metadata.name", f"name '{shown}' {NAME_HINT}"))


@pytest.mark.parametrize("name", ["ab", "web", "web-1", "a1-b2-c3", "a" * 32])
def test_good_names(name: str) -> None:
    assert errors(app(name=name)) == []


def test_job_names_follow_the_same_rule() -> None:
    expect(job(name="Nightly_Job  # <-"), ("metadata.name", f"name 'Nightly_Job' {NAME_HINT}"))


def test_bad_namespace_and_container_name() -> None:
    text = app(metadata="namespace: Team_A  # <-\n").replace("- name: app", "- name: App_1  # <-")
    expect(
        text,
        (
            "metadata.namespace",
            "namespace 'Team_A' is invalid; use 1-63 lowercase letters, digits and '-', starting and ending "
            "with a letter or digit",
        ),
        (
            "spec.containers[0].name",
            "container name 'App_1' is invalid; use 1-63 lowercase letters, digits and '-', starting and "
            "ending with a letter or digit",
        ),
    )


def test_duplicate_container_names() -> None:
    text = (
        HEAD
        + "metadata:\n  name: web\nspec:\n  containers:\n"
        + "    - {name: app, image: 'nginx:1.27', cpu: 0.25, memory: 0.5Gi}\n"
        + "    - {name: app, image: 'busybox:1.36', cpu: 0.25, memory: 0.5Gi}  # <-\n"
    )
    expect(
        text,
        ("spec.containers[1].name", "container 'app' appears twice (also at [0]); remove or rename one"),
    )


# --- cpu and memory ----------------------------------------------------------------------------

PAIRS = "use one of 0.25/0.5Gi, 0.5/1Gi, 0.75/1.5Gi, 1/2Gi, ... 4/8Gi"


def test_cpu_not_in_steps_of_a_quarter() -> None:
    expect(
        app(cpu="0.3  # <-"),
        (
            "spec.containers[0].cpu",
            f"cpu 0.3 and memory 0.5Gi (totals over all containers) are not a valid pair; {PAIRS}",
        ),
    )


def test_memory_not_twice_the_cpu() -> None:
    expect(
        app(cpu="0.5", memory="2Gi  # <-"),
        (
            "spec.containers[0].memory",
            f"cpu 0.5 and memory 2Gi (totals over all containers) are not a valid pair; {PAIRS}",
        ),
    )


def test_totals_over_several_containers() -> None:
    text = (
        HEAD
        + "metadata:\n  name: web\nspec:\n  containers:  # <-\n"
        + "    - {name: app, image: 'nginx:1.27', cpu: 0.25, memory: 0.5Gi}\n"
        + "    - {name: sidecar, image: 'busybox:1.36', cpu: 0.5, memory: 512Mi}\n"
    )
    expect(
        text,
        (
            "spec.containers",
            f"cpu 0.75 and memory 1Gi (totals over all containers) are not a valid pair; {PAIRS}",
        ),
    )


def test_sidecars_that_add_up_to_a_valid_pair_are_fine() -> None:
    text = (
        HEAD
        + "metadata:\n  name: web\nspec:\n  containers:\n"
        + "    - {name: app, image: 'nginx:1.27', cpu: 0.5, memory: 1Gi}\n"
        + "    - {name: sidecar, image: 'busybox:1.36', cpu: 0.25, memory: 512Mi}\n"
    )
    assert errors(text) == []


@pytest.mark.parametrize(
    ("cpu", "memory"), [("0.25", "0.5Gi"), ("0.75", "1536Mi"), ("2", "4Gi"), ("4", "8Gi"), ("1", "2.0Gi")]
)
def test_valid_pairs(cpu: str, memory: str) -> None:
    assert errors(app(cpu=cpu, memory=memory)) == []


def test_above_the_consumption_maximum() -> None:
    expect(
        app(cpu="4.25  # <-", memory="8.5Gi"),
        (
            "spec.containers[0].cpu",
            f"cpu 4.25 and memory 8.5Gi (totals over all containers) are not a valid pair; {PAIRS}",
        ),
    )


@pytest.mark.parametrize("memory", ["1GB", "1", "0.5gi", "Gi", "-1Gi", "0Gi", "1.Gi"])
def test_memory_format(memory: str) -> None:
    expect(
        app(memory=f"'{memory}'  # <-"),
        (
            "spec.containers[0].memory",
            f"memory '{memory}' is not valid; use a number followed by Gi or Mi, e.g. 0.5Gi or 512Mi",
        ),
    )


def test_memory_is_normalised_to_gi() -> None:
    desired = load_desired({FILE: app(cpu="0.75", memory="1536Mi").encode()})
    assert desired.resources[0].manifest.spec.containers[0].memory == "1.5Gi"


@pytest.mark.parametrize(("cpu", "shown"), [("'0.5'", "'0.5'"), ("true", "true"), ("[1]", "a list")])
def test_cpu_must_be_a_number(cpu: str, shown: str) -> None:
    expect(app(cpu=f"{cpu}  # <-"), ("spec.containers[0].cpu", f"expected a number such as 0.5, got {shown}"))


@pytest.mark.parametrize(("cpu", "shown"), [("0", "0.0"), ("-0.25", "-0.25"), (".nan", "nan")])
def test_cpu_must_be_positive(cpu: str, shown: str) -> None:
    expect(
        app(cpu=f"{cpu}  # <-"),
        ("spec.containers[0].cpu", f"cpu {shown} must be a positive number such as 0.25"),
    )


# --- ports, scale ------------------------------------------------------------------------------


@pytest.mark.parametrize("port", ["0", "65536", "-1"])
def test_target_port_range(port: str) -> None:
    expect(
        app(f"ingress:\n  targetPort: {port}  # <-\n"),
        ("spec.ingress.targetPort", f"targetPort {port} is not a valid port; use 1-65535"),
    )


def test_probe_ports() -> None:
    expect(
        app(container="probes:\n  - type: Liveness\n    tcpSocket:\n      port: 70000  # <-\n"),
        ("spec.containers[0].probes[0].tcpSocket.port", "port 70000 is not a valid port; use 1-65535"),
    )


def test_ingress_needs_a_target_port_when_enabled() -> None:
    expect(
        app("ingress:  # <-\n  external: true\n"),
        (
            "spec.ingress.targetPort",
            "ingress is enabled but has no targetPort; add the port your container listens on",
        ),
    )
    assert errors(app("ingress:\n  enabled: false\n")) == []


def test_allowed_origins() -> None:
    expect(
        app(
            "ingress:\n  targetPort: 80\n  allowedOrigins: ['*', 'https://a.example.com', 'example.com']  # "
            "<-\n"
        ),
        (
            "spec.ingress.allowedOrigins[2]",
            "allowed origin 'example.com' is invalid; use '*' or scheme://host[:port], e.g. "
            "https://example.com",
        ),
    )


def test_min_replicas_above_max() -> None:
    expect(
        app("scale:\n  minReplicas: 5  # <-\n  maxReplicas: 3\n"),
        (
            "spec.scale.minReplicas",
            "minReplicas 5 is greater than maxReplicas 3; lower minReplicas or raise maxReplicas",
        ),
    )


def test_replica_ranges() -> None:
    expect(
        app("scale:\n  minReplicas: -1  # <-\n  maxReplicas: 1001  # <-\n"),
        ("spec.scale.minReplicas", "minReplicas -1 is out of range; use a value from 0 to 1000"),
        ("spec.scale.maxReplicas", "maxReplicas 1001 is out of range; use a value from 1 to 1000"),
    )
    expect(
        app("scale:\n  maxReplicas: 0  # <-\n"),
        ("spec.scale.maxReplicas", "maxReplicas 0 is out of range; use a value from 1 to 1000"),
    )
    assert errors(app("scale:\n  minReplicas: 0\n  maxReplicas: 1000\n")) == []


def test_scale_rules() -> None:
    expect(
        app(
            """
            scale:
              rules:
                - name: none  # <-
                - name: http
                  http: {metadata: {concurrentRequests: "10"}}
                - name: http  # <-
                  custom:
                    type: azure-servicebus
                    auth:
                      - secretRef: sb  # <-
                        triggerParameter: connection
            """
        ),
        (
            "spec.scale.rules[0]",
            "scale rule 'none' needs exactly one of http, tcp, custom or azureQueue; keep one",
        ),
        ("spec.scale.rules[2].name", "scale rule 'http' appears twice (also at [1]); remove or rename one"),
        (
            "spec.scale.rules[2].custom.auth[0].secretRef",
            "secretRef 'sb' is not declared in spec.secrets; " + SECRET_HINT,
        ),
    )


# --- environment and secrets -------------------------------------------------------------------

SECRET_HINT = (
    "add it there (or, for a secret set on the live app outside Git, to spec.externalSecrets) or fix the name"
)
ENV_HINT = "is invalid; use letters, digits, '_', '-' and '.', not starting with a digit"


def test_env_var_names() -> None:
    expect(
        app(
            "environment:\n  - {name: 1ST, value: a}  # <-\n  - {name: MY VAR, value: b}  # <-\n  - {name: "
            "_ok_1, value: c}\n  - {name: redis-secret, value: d}\n  - {name: a.b, value: e}\n"
        ),
        ("spec.environment[0].name", f"env var name '1ST' {ENV_HINT}"),
        ("spec.environment[1].name", f"env var name 'MY VAR' {ENV_HINT}"),
    )


def test_container_env_var_names() -> None:
    expect(
        app(container="env:\n  - {name: 'a=b', value: x}  # <-\n"),
        ("spec.containers[0].env[0].name", f"env var name 'a=b' {ENV_HINT}"),
    )


def test_env_values_and_value_from() -> None:
    expect(
        app(
            """
            environment:
              - name: EMPTY  # <-
              - name: BOTH
                value: x
                valueFrom:  # <-
                  secretRef: db
              - name: EMPTY  # <-
                value: "1"
            secrets:
              db: https://kv-one.vault.azure.net/secrets/db
            """
        ),
        ("spec.environment[0]", "env var 'EMPTY' has neither value nor valueFrom; set one"),
        ("spec.environment[1].valueFrom", "env var 'BOTH' has both value and valueFrom; keep one"),
        ("spec.environment[2].name", "env var 'EMPTY' is set twice in this list (also at [0]); remove one"),
    )


def test_env_value_must_be_a_string() -> None:
    expect(
        app("environment:\n  - name: PORT\n    value: 8080  # <-\n"),
        ("spec.environment[0].value", "value must be a string, got 8080; quote the value"),
    )


def test_every_secret_ref_names_a_declared_secret() -> None:
    expect(
        app(
            """
            environment:
              - name: DB
                valueFrom:
                  secretRef: db-password  # <-
            registries:
              - server: myacr.azurecr.io
                username: robot
                passwordSecretRef: acr-pass  # <-
            secrets:
              db-passwd: https://kv-one.vault.azure.net/secrets/db
            """,
            container="env:\n  - name: KEY\n    valueFrom: {secretRef: api-key}  # <-\n",
        ),
        (
            "spec.containers[0].env[0].valueFrom.secretRef",
            "secretRef 'api-key' is not declared in spec.secrets; " + SECRET_HINT,
        ),
        (
            "spec.environment[0].valueFrom.secretRef",
            "secretRef 'db-password' is not declared in spec.secrets; " + SECRET_HINT,
        ),
        (
            "spec.registries[0].passwordSecretRef",
            "secretRef 'acr-pass' is not declared in spec.secrets; " + SECRET_HINT,
        ),
    )


def test_secret_values_must_be_key_vault_references_and_are_never_echoed() -> None:
    text = app("secrets:\n  db-password: hunter2  # <-\n")
    expect(
        text,
        (
            "spec.secrets.db-password",
            "secret must be a Key Vault reference, not a value; use "
            "https://<vault>.vault.azure.net/secrets/<name> "
            "or a Key Vault secret resource ID, and keep the value in Key Vault",
        ),
    )
    assert all("hunter2" not in str(e) for e in errors(text))


def test_malformed_key_vault_references() -> None:
    expect(
        app(
            """
            secrets:
              a: /subscriptions/0/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv/secrets/db  # <-
              b: https://example.com/db  # <-
              Bad_Name: https://kv-one.vault.azure.net/secrets/db  # <-
            """
        ),
        (
            "spec.secrets.a",
            "'/subscriptions/0/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv/secrets/db' is not "
            "a Key Vault "
            "secret resource ID; use "
            "/subscriptions/<id>/resourceGroups/<rg>/providers/Microsoft.KeyVault/vaults/"
            "<vault>/secrets/<name> (vault: 3-24 letters, digits and '-')",
        ),
        (
            "spec.secrets.b",
            "secret URL 'https://example.com/db' is not a Key Vault secret URL; use "
            "https://<vault>.vault.azure.net/secrets/<name>[/<version>]",
        ),
        (
            "spec.secrets.Bad_Name",
            "secret name 'Bad_Name' is invalid; use lowercase letters, digits, '-' and '.', starting and "
            "ending with a letter or digit",
        ),
    )


# --- images ------------------------------------------------------------------------------------

BAD_IMAGE = (
    "is not a valid image reference; "
    "use registry/repository:tag or registry/repository@sha256:<64 hex digits>"
)
DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    "image",
    [
        "nginx:1.27",
        "library/nginx:latest",
        "mcr.microsoft.com/azuredocs/containerapps-helloworld:latest",
        "localhost:5000/team/app:1.0",
        "myacr.azurecr.io/team/app_x:v1.2.3-rc.1",
        f"nginx@{DIGEST}",
        f"myacr.azurecr.io/app:1.0@{DIGEST}",
    ],
)
def test_good_image_references(image: str) -> None:
    assert errors(app(image=image)) == []


@pytest.mark.parametrize(
    "image", ["Nginx:1", "nginx:latest!", "nginx@sha256:1234", "nginx:", "https://x.io/app:1", "a//b:1"]
)
def test_bad_image_references(image: str) -> None:
    expect(app(image=f"'{image}'  # <-"), ("spec.containers[0].image", f"image '{image}' {BAD_IMAGE}"))


def test_images_need_a_tag_or_digest() -> None:
    expect(
        app(image="myacr.azurecr.io/app  # <-"),
        (
            "spec.containers[0].image",
            "image 'myacr.azurecr.io/app' has no tag or digest; pin it, e.g. myacr.azurecr.io/app:1.0 or "
            "myacr.azurecr.io/app@sha256:<64 hex digits>",
        ),
    )


# --- tags --------------------------------------------------------------------------------------


def tags(count: int) -> str:
    return "tags:  # <-\n" + "".join(f"  tag-{i:02d}: v\n" for i in range(count))


def test_at_most_47_user_tags() -> None:
    assert errors(app(tags(47).replace("  # <-", ""))) == []
    expect(
        app(tags(48)),
        (
            "spec.tags",
            "48 tags is too many; use at most 47 (Azure allows 50 and SynosCD adds its 3 ownership tags)",
        ),
    )


@pytest.mark.parametrize("name", ["synoscd-managed", "synoscd-source", "synoscd-revision", "SynosCD-Managed"])
def test_ownership_tags_are_reserved(name: str) -> None:
    expect(
        app(f"tags:\n  {name}: 'true'  # <-\n"),
        (
            f"spec.tags.{name}",
            f"tag '{name}' is reserved for SynosCD's ownership tags; remove it (SynosCD sets it)",
        ),
    )


def test_tag_name_characters_and_lengths() -> None:
    long_name, long_value = "n" * 513, "v" * 257
    expect(
        app(
            f"""
            tags:
              "a<b": x  # <-
              "cost/center?": x  # <-
              {long_name}: x  # <-
              long: {long_value}  # <-
              " ": x  # <-
              team: a
              Team: b  # <-
            """
        ),
        ('spec.tags["a<b"]', "tag name 'a<b' contains <; tag names may not contain < > % & \\ ? /"),
        (
            'spec.tags["cost/center?"]',
            "tag name 'cost/center?' contains / ?; tag names may not contain < > % & \\ ? /",
        ),
        (f"spec.tags.{long_name}", f"tag name '{'n' * 60}...' is longer than 512 characters; shorten it"),
        ("spec.tags.long", "value of tag 'long' is longer than 256 characters; shorten it"),
        ('spec.tags[" "]', "tag name is empty; give the tag a name"),
        ("spec.tags.Team", "tag 'Team' duplicates 'team' (tag names ignore case); keep one"),
    )


# --- probes, volumes, registries, identity, configFrom -----------------------------------------


def test_probes() -> None:
    expect(
        app(
            container="""
            probes:
              - type: Liveness
                httpGet: {path: /healthz, port: 8080}
              - type: Readiness  # <-
              - type: Startup  # <-
                tcpSocket: {port: 8080}
                httpGet: {port: 8080}
            """
        ),
        (
            "spec.containers[0].probes[1]",
            "Readiness probe needs exactly one of httpGet or tcpSocket; keep one",
        ),
        ("spec.containers[0].probes[2]", "Startup probe needs exactly one of httpGet or tcpSocket; keep one"),
    )


def test_probe_timing_ranges() -> None:
    expect(
        app(
            container="""
            probes:
              - type: Startup
                tcpSocket: {port: 8080}
                initialDelaySeconds: 61  # <-
                periodSeconds: 500  # <-
                failureThreshold: 0  # <-
            """
        ),
        (
            "spec.containers[0].probes[0].initialDelaySeconds",
            "initialDelaySeconds 61 is out of range; use a value from 0 to 60",
        ),
        (
            "spec.containers[0].probes[0].periodSeconds",
            "periodSeconds 500 is out of range; use a value from 1 to 240",
        ),
        (
            "spec.containers[0].probes[0].failureThreshold",
            "failureThreshold 0 is out of range; use a value from 1 to 10",
        ),
    )


def test_duplicate_probe_types() -> None:
    expect(
        app(
            container="probes:\n  - {type: Liveness, tcpSocket: {port: 80}}\n"
            "  - {type: Liveness, tcpSocket: {port: 81}}  # <-\n"
        ),
        ("spec.containers[0].probes[1].type", "container 'app' has two Liveness probes; keep one"),
    )


def test_volumes() -> None:
    expect(
        app(
            """
            volumes:
              - name: share  # <-
                storageType: AzureFile
              - name: cache
              - name: cache  # <-
            """,
            container="volumeMounts:\n  - volumeName: data  # <-\n    mountPath: /data\n"
            "  - {volumeName: cache, mountPath: /cache}\n",
        ),
        (
            "spec.containers[0].volumeMounts[0].volumeName",
            "volume 'data' is not declared in spec.volumes; add it there or fix the name",
        ),
        (
            "spec.volumes[0].storageName",
            "volume 'share' of storageType AzureFile needs storageName; add the environment's storage name",
        ),
        ("spec.volumes[2].name", "volume 'cache' appears twice (also at [1]); remove or rename one"),
    )


def test_mount_path_may_not_climb_out() -> None:
    expect(
        app(
            "volumes: [{name: v}]\n",
            container="volumeMounts:\n  - {volumeName: v, mountPath: data/../x}  # <-\n"
            "  - {volumeName: v, mountPath: mnt/relative}\n",
        ),
        (
            "spec.containers[0].volumeMounts[0].mountPath",
            "mountPath 'data/../x' is invalid; use a path such as /mnt/data, without '..' or '\\'",
        ),
    )


IDENTITY = (
    "/subscriptions/0/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/pull"
)


def test_registries() -> None:
    expect(
        app(
            f"""
            identity:
              - {IDENTITY}
            registries:
              - server: a.azurecr.io  # <-
                username: robot
              - server: b.azurecr.io  # <-
                passwordSecretRef: pass
              - server: c.azurecr.io  # <-
                identity: system
                username: robot
              - server: d.azurecr.io
                identity: {IDENTITY.replace("pull", "other")}  # <-
              - server: e.azurecr.io
                identity: {IDENTITY}
              - server: e.azurecr.io  # <-
                identity: system
            secrets:
              pass: https://kv-one.vault.azure.net/secrets/pass
            """
        ),
        (
            "spec.registries[0].passwordSecretRef",
            "registry 'a.azurecr.io' has a username but no passwordSecretRef; add one",
        ),
        (
            "spec.registries[1].username",
            "registry 'b.azurecr.io' has a passwordSecretRef but no username; add one",
        ),
        (
            "spec.registries[2]",
            "registry 'c.azurecr.io' sets both identity and username/passwordSecretRef; keep one way to "
            "sign in",
        ),
        (
            "spec.registries[3].identity",
            "registry identity '/subscriptions/0/resourceGroups/rg/providers/Microsoft.Manag...' is not "
            "listed in spec.identity; add it there",
        ),
        (
            "spec.registries[5].server",
            "registry 'e.azurecr.io' appears twice (also at [4]); remove or rename one",
        ),
    )


def test_registry_server_must_be_a_host() -> None:
    expect(
        app("registries:\n  - server: myacr  # <-\n    identity: system\n"),
        (
            "spec.registries[0].server",
            "registry server 'myacr' is not a host name; use e.g. myregistry.azurecr.io",
        ),
    )


def test_identity_must_be_a_user_assigned_identity_id() -> None:
    expect(
        app("identity:\n  - my-identity  # <-\n"),
        (
            "spec.identity[0]",
            "identity 'my-identity' is not a user-assigned identity resource ID; use /subscriptions/<id>/"
            "resourceGroups/<rg>/providers/Microsoft.ManagedIdentity/userAssignedIdentities/<name>",
        ),
    )


@pytest.mark.parametrize("path", ["../secrets.json", "/etc/passwd", "a//b", "a\\b", ""])
def test_config_from_paths(path: str) -> None:
    expect(
        app(f"configFrom:\n  - '{path}'  # <-\n"),
        (
            "spec.configFrom[0]",
            f"path '{path}' is invalid; use a path relative to the repository root, e.g. config/web.json",
        ),
    )


# --- jobs --------------------------------------------------------------------------------------


def test_schedule_job_needs_a_cron_expression() -> None:
    text = job("triggerType: Schedule\n")
    assert errors(text) == [
        ManifestError(
            FILE,
            5,
            "spec.cronExpression",
            "triggerType Schedule needs a cronExpression, e.g. '*/5 * * * *'; add one",
        )
    ]


def test_cron_expression_only_with_schedule() -> None:
    expect(
        job("cronExpression: '0 * * * *'  # <-\n"),
        (
            "spec.cronExpression",
            "cronExpression is only used with triggerType Schedule (this job is Manual); remove it or set "
            "triggerType: Schedule",
        ),
    )


@pytest.mark.parametrize("cron", ["every day", "* * * *", "* * * * * *", "0 2 * * * ; rm"])
def test_cron_expression_syntax(cron: str) -> None:
    expect(
        job(f"triggerType: Schedule\ncronExpression: '{cron}'  # <-\n"),
        (
            "spec.cronExpression",
            f"cronExpression '{cron}' is not a 5-field cron expression (minute hour day month weekday); use "
            "e.g. '*/5 * * * *'",
        ),
    )


def test_event_job_needs_scale_rules() -> None:
    assert errors(job("triggerType: Event\n")) == [
        ManifestError(
            FILE, 5, "spec.scale", "triggerType Event needs scale.rules with at least one rule; add one"
        )
    ]
    expect(
        job("triggerType: Event\nscale:\n  rules: []  # <-\n"),
        ("spec.scale.rules", "triggerType Event needs scale.rules with at least one rule; add one"),
    )
    assert errors(job("triggerType: Event\nscale:\n  rules:\n    - {name: q, type: azure-queue}\n")) == []


def test_job_scale_only_for_event_jobs_and_in_order() -> None:
    expect(
        job("scale:  # <-\n  minExecutions: 5  # <-\n  maxExecutions: 2\n"),
        ("spec.scale", "scale is only used with triggerType Event; remove it or set triggerType: Event"),
        (
            "spec.scale.minExecutions",
            "minExecutions 5 is greater than maxExecutions 2; lower minExecutions or raise maxExecutions",
        ),
    )


def test_job_trigger_type_and_counts() -> None:
    expect(
        job("triggerType: Cron  # <-\nreplicaTimeout: 0  # <-\nparallelism: 0  # <-\n"),
        ("spec.triggerType", "triggerType must be 'Manual', 'Schedule' or 'Event', got 'Cron'"),
        ("spec.replicaTimeout", "replicaTimeout 0 is out of range; use a value from 1 to 86400"),
        ("spec.parallelism", "parallelism 0 is out of range; use a value from 1 to 1000"),
    )


def test_jobs_share_the_container_rules() -> None:
    text = job("environment:\n  - name: X\n    valueFrom: {secretRef: nope}  # <-\n").replace(
        "cpu: 0.25", "cpu: 0.5"
    )
    expect(
        text.replace("memory: 0.5Gi", "memory: 0.5Gi  # <-"),
        (
            "spec.containers[0].memory",
            f"cpu 0.5 and memory 0.5Gi (totals over all containers) are not a valid pair; {PAIRS}",
        ),
        (
            "spec.environment[0].valueFrom.secretRef",
            "secretRef 'nope' is not declared in spec.secrets; " + SECRET_HINT,
        ),
    )


# --- annotations -------------------------------------------------------------------------------


def test_synoscd_annotations_are_kept() -> None:
    text = app(
        metadata="annotations:\n  synoscd.io/sync-wave: '-1'\n  synoscd.io/sync-options: Prune=false\n"
    )
    desired = load_desired({FILE: text.encode()})
    assert desired.errors == []
    assert desired.resources[0].manifest.metadata.annotations == {
        "synoscd.io/sync-wave": "-1",
        "synoscd.io/sync-options": "Prune=false",
    }


def test_only_jobs_can_be_hooks() -> None:
    text = app(metadata="annotations:\n  synoscd.io/hook: PreSync\n")
    desired = load_desired({FILE: text.encode()})
    assert [(e.field, e.message) for e in desired.errors] == [
        (
            'metadata.annotations["synoscd.io/hook"]',
            "only Jobs can be hooks; remove synoscd.io/hook or make this a Job",
        )
    ]


def test_validate_false_skips_synoscds_own_checks() -> None:
    text = app(metadata="annotations:\n  synoscd.io/sync-options: Validate=false\n").replace(
        "cpu: 0.25", "cpu: 0.3"
    )
    desired = load_desired({FILE: text.encode()})
    assert desired.errors == [] and desired.resources[0].manifest.spec.containers[0].cpu == 0.3
