"""The JSON Schema for editors and `synos schema`, and the models' own behaviour."""

from __future__ import annotations

import json
from typing import Any

import pydantic
import pytest

from synoscd.manifests import App, json_schema, load_desired
from synoscd.manifests.schema import APP_SPEC_FIELDS, Container


def walk(node: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        found.append(node)
        for value in node.values():
            found.extend(walk(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(walk(value))
    return found


def test_schema_is_a_one_of_discriminated_on_kind() -> None:
    schema = json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["oneOf"] == [
        {"$ref": f"#/$defs/{kind}"}
        for kind in ("App", "Job", "Project", "Synthesizer", "Composition", "Target")
    ]
    assert schema["discriminator"]["propertyName"] == "kind"
    assert set(schema["discriminator"]["mapping"]) == {
        "App",
        "Job",
        "Project",
        "Synthesizer",
        "Composition",
        "Target",
    }
    for kind in ("App", "Job", "Project"):
        definition = schema["$defs"][kind]
        assert definition["properties"]["kind"] == {"const": kind, "title": "kind", "type": "string"}
        assert definition["properties"]["apiVersion"]["const"] == "synoscd.io/v1alpha1"
    json.dumps(schema)  # serialisable as it is


def test_schema_uses_camel_case_and_forbids_unknown_fields() -> None:
    schema = json_schema()
    objects = [node for node in walk(schema) if node.get("type") == "object" and "properties" in node]
    assert objects
    for node in objects:
        if node.get("title") == "defaults":
            continue
        assert node.get("additionalProperties") is False, node.get("title")
        assert all("_" not in name for name in node["properties"]), node["properties"].keys()
    container = schema["$defs"]["Container"]
    assert container["required"] == ["name", "image", "cpu", "memory"]
    assert "volumeMounts" in container["properties"]
    assert schema["$defs"]["Ingress"]["properties"]["targetPort"]["anyOf"][0]["maximum"] == 65535
    assert schema["$defs"]["Metadata"]["properties"]["name"]["pattern"].startswith("^(?!.*--)")


def test_schema_lists_the_fields_project_defaults_may_set() -> None:
    defaults = json_schema()["$defs"]["ProjectSpec"]["properties"]["defaults"]
    assert defaults["propertyNames"] == {"enum": list(APP_SPEC_FIELDS)}


def test_schema_is_a_copy() -> None:
    json_schema()["$defs"].clear()
    assert json_schema()["$defs"]


def test_models_are_frozen_values() -> None:
    app = (
        load_desired(
            {
                "a.yaml": b"apiVersion: synoscd.io/v1alpha1\nkind: App\nmetadata: {name: web}\nspec:\n"
                b"  containers: [{name: app, image: 'nginx:1', cpu: 0.5, memory: 1024Mi}]\n"
            }
        )
        .resources[0]
        .manifest
    )
    assert isinstance(app, App)
    with pytest.raises(pydantic.ValidationError):
        app.spec.containers[0].cpu = 1  # type: ignore[misc]
    dumped = app.model_dump(by_alias=True, exclude_defaults=True)
    assert dumped["spec"]["containers"][0] == {"name": "app", "image": "nginx:1", "cpu": 0.5, "memory": "1Gi"}
    assert App.model_validate(app.model_dump(by_alias=True)) == app


def test_container_exposes_exact_totals() -> None:
    container = Container.model_validate({"name": "a", "image": "a:1", "cpu": 0.1, "memory": "100Mi"})
    assert str(container.cpu_decimal) == "0.1"
    assert str(container.memory_gi) == "0.09765625"
