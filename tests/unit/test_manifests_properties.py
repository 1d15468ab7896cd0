"""Properties: generated valid Apps always validate; no input makes the loader raise."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synoscd.manifests import App, load_desired

names = st.from_regex(r"\A[a-z](?:[a-z0-9]|-(?=[a-z0-9])){0,30}[a-z0-9]\Z")
labels = st.from_regex(r"\A[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?\Z")
env_names = st.from_regex(r"\A[A-Za-z_][A-Za-z0-9_]{0,20}\Z")
text = st.text(alphabet=st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=40)
images = st.builds(
    lambda registry, repo, tag: f"{registry}{repo}:{tag}",
    st.sampled_from(["", "myacr.azurecr.io/", "localhost:5000/", "mcr.microsoft.com/team/"]),
    st.from_regex(r"\A[a-z0-9]+(?:[-._][a-z0-9]+){0,2}\Z"),
    st.from_regex(r"\A[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}\Z"),
)


@st.composite
def apps(draw: st.DrawFn) -> dict[str, Any]:
    # Split a valid total (quarters of a cpu, memory twice that) over one to three containers.
    quarters = draw(st.integers(1, 16))
    count = draw(st.integers(1, min(3, quarters)))
    cuts = sorted(draw(st.sets(st.integers(1, max(quarters - 1, 1)), min_size=count - 1, max_size=count - 1)))
    parts = [b - a for a, b in zip([0, *cuts], [*cuts, quarters], strict=True)]
    container_names = draw(st.lists(labels, min_size=count, max_size=count, unique=True))
    containers = []
    for name, part in zip(container_names, parts, strict=True):
        cpu = Decimal(part) / 4
        memory = f"{cpu * 2}Gi" if draw(st.booleans()) else f"{int(cpu * 2 * 1024)}Mi"
        containers.append({"name": name, "image": draw(images), "cpu": float(cpu), "memory": memory})
    secrets = draw(st.dictionaries(labels, st.just("https://kv-one.vault.azure.net/secrets/s"), max_size=3))
    env = draw(st.lists(env_names, max_size=4, unique=True))
    environment = [
        {"name": n, "valueFrom": {"secretRef": draw(st.sampled_from(sorted(secrets)))}}
        if secrets and draw(st.booleans())
        else {"name": n, "value": draw(text)}
        for n in env
    ]
    low = draw(st.integers(0, 1000))
    spec: dict[str, Any] = {
        "containers": containers,
        "environment": environment,
        "secrets": secrets,
        "scale": {"minReplicas": low, "maxReplicas": draw(st.integers(max(low, 1), 1000))},
        "tags": draw(
            st.dictionaries(
                st.from_regex(r"\A[a-z][a-z0-9-]{0,20}\Z").filter(lambda t: not t.startswith("synoscd")),
                text,
                max_size=47,
            )
        ),
        "suspend": draw(st.booleans()),
    }
    if draw(st.booleans()):
        spec["ingress"] = {"external": draw(st.booleans()), "targetPort": draw(st.integers(1, 65535))}
    metadata = {"name": draw(names), "labels": {"synoscd.io/managed": "true"}}
    return {"apiVersion": "synoscd.io/v1alpha1", "kind": "App", "metadata": metadata, "spec": spec}


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(apps())
def test_generated_valid_apps_validate(document: dict[str, Any]) -> None:
    content = yaml.safe_dump(document, sort_keys=False, allow_unicode=True).encode()
    desired = load_desired({"apps/generated.yaml": content})
    assert desired.errors == []
    [resource] = desired.resources
    assert isinstance(resource.manifest, App)
    assert resource.name == document["metadata"]["name"]
    total = sum(Decimal(repr(c.cpu)) for c in resource.manifest.spec.containers)
    assert total == sum(Decimal(repr(c["cpu"])) for c in document["spec"]["containers"])


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_the_loader_never_raises_on_bytes(data: bytes) -> None:
    desired = load_desired({"x.yaml": data})
    assert all(not e.message.startswith("internal error") for e in desired.errors)
    assert desired.complete == (not desired.errors)


yamlish = st.lists(
    st.sampled_from(
        [
            "a:",
            " b:",
            "- ",
            "[",
            "]",
            "{",
            "}",
            ",",
            ": ",
            "&x ",
            "*x",
            "<<: *x",
            "---",
            "...",
            "!!str ",
            "!t ",
            "'",
            '"',
            "|",
            ">",
            "#",
            "\n",
            "  ",
            "kind: App",
            "apiVersion: synoscd.io/v1alpha1",
            "metadata:",
            "spec:",
            "name: web",
            "containers:",
            "cpu: 0.25",
            "memory: 0.5Gi",
            "? ",
            "1",
            "null",
            "~",
            "\t",
        ]
    ),
    max_size=60,
).map("".join)


@settings(max_examples=500, deadline=None)
@given(st.one_of(yamlish, st.text(max_size=500)))
def test_the_loader_never_raises_on_text(source: str) -> None:
    desired = load_desired({"x.yaml": source.encode("utf-8", "surrogatepass")})
    assert all(not e.message.startswith("internal error") for e in desired.errors)
    for error in desired.errors:
        assert error.file == "x.yaml" and error.line >= 1
