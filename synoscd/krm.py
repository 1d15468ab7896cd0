"""A small helper for synthesizer authors: write a function from input items to Apps and Jobs, and let
this module speak the KRM protocol in both of SynosCD's forms. Standard library only, and no import of
the rest of SynosCD, so a synthesizer image can copy this one file.

    from synoscd import krm

    def synthesize(inputs: krm.Inputs) -> list[dict]:
        fleet = inputs.data("fleet")            # the item bound as key `fleet` (its `data`)
        if not fleet.get("apps"):
            inputs.error("no apps in the fleet input")
        return [krm.app(name, image="ghcr.io/contoso/web:1") for name in fleet.get("apps", [])]

    if __name__ == "__main__":
        krm.run(synthesize)

`run` reads the ResourceList from stdin and writes the answer to stdout (executor exec, `kpt fn`,
any KRM runner); in a synthesizer job it reads the ResourceList from `KRM_INPUT_URL` and writes the
answer to `KRM_OUTPUT_URL` (short-lived blob SAS URLs SynosCD sets on the execution). Results of
severity error make the synthesis fail (the composition keeps its last good output); an exception
becomes such an error result too.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
import urllib.request
from collections.abc import Callable, Iterable
from typing import Any, TextIO

API_VERSION = "synoscd.io/v1alpha1"
KRM_API_VERSION = "config.kubernetes.io/v1"
INPUT_KEY = "synoscd.io/input-key"
REVISION = "synoscd.io/revision"
INPUT_ENV, OUTPUT_ENV = "KRM_INPUT_URL", "KRM_OUTPUT_URL"


class Inputs:
    """The input items by key, the composition (functionConfig), and the results to report."""

    def __init__(self, resource_list: dict[str, Any]) -> None:
        self.items: list[dict[str, Any]] = list(resource_list.get("items") or [])
        self.composition: dict[str, Any] = dict(resource_list.get("functionConfig") or {})
        self.results: list[dict[str, Any]] = []

    @property
    def name(self) -> str:
        """The composition's name."""
        return str((self.composition.get("metadata") or {}).get("name", ""))

    @property
    def config(self) -> dict[str, Any]:
        """The composition's `spec.config`."""
        return dict((self.composition.get("spec") or {}).get("config") or {})

    def item(self, key: str) -> dict[str, Any] | None:
        for item in self.items:
            if ((item.get("metadata") or {}).get("annotations") or {}).get(INPUT_KEY) == key:
                return item
        return None

    def data(self, key: str, default: Any = None) -> Any:
        """The content of input `key`: `data` of a wrapped file or inline object (or the KRM object
        itself when the input was one); `default` when there is no such input."""
        item = self.item(key)
        if item is None:
            return {} if default is None else default
        return item["data"] if "data" in item and item.get("kind") in ("Input", "SecretVersion") else item

    def revision(self, key: str) -> str | None:
        item = self.item(key) or {}
        return ((item.get("metadata") or {}).get("annotations") or {}).get(REVISION)

    def error(self, message: str, item: dict[str, Any] | None = None) -> None:
        self._result("error", message, item)

    def warning(self, message: str, item: dict[str, Any] | None = None) -> None:
        self._result("warning", message, item)

    def info(self, message: str, item: dict[str, Any] | None = None) -> None:
        self._result("info", message, item)

    def _result(self, severity: str, message: str, item: dict[str, Any] | None) -> None:
        result: dict[str, Any] = {"severity": severity, "message": message}
        if item is not None:
            result["resourceRef"] = {
                "apiVersion": item.get("apiVersion"),
                "kind": item.get("kind"),
                "name": (item.get("metadata") or {}).get("name"),
            }
        self.results.append(result)


def app(name: str, image: str, cpu: float = 0.25, memory: str = "0.5Gi", **spec: Any) -> dict[str, Any]:
    """An App manifest with one container named after the app; `spec` adds fields (ingress, scale,
    environment, tags, ...) as the manifest reference names them."""
    container = {"name": "main", "image": image, "cpu": cpu, "memory": memory}
    return {
        "apiVersion": API_VERSION,
        "kind": "App",
        "metadata": {"name": name},
        "spec": {"containers": [container], **spec},
    }


def job(name: str, image: str, cpu: float = 0.25, memory: str = "0.5Gi", **spec: Any) -> dict[str, Any]:
    container = {"name": "main", "image": image, "cpu": cpu, "memory": memory}
    return {
        "apiVersion": API_VERSION,
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {"containers": [container], **spec},
    }


def process(
    resource_list: dict[str, Any], fn: Callable[[Inputs], Iterable[dict[str, Any]]]
) -> dict[str, Any]:
    """Run `fn` over a ResourceList; the answer (an exception becomes an error result)."""
    inputs = Inputs(resource_list)
    try:
        items = list(fn(inputs) or [])
    except Exception as exc:  # the author's bug: report it as the composition's error
        items = []
        inputs.error(f"{type(exc).__name__}: {exc}")
        traceback.print_exc(file=sys.stderr)
    return {"apiVersion": KRM_API_VERSION, "kind": "ResourceList", "items": items, "results": inputs.results}


def run(
    fn: Callable[[Inputs], Iterable[dict[str, Any]]],
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    environ: dict[str, str] | None = None,
) -> int:
    """The whole synthesizer: read, run `fn`, write. Returns the exit code (1 when there are errors)."""
    env = os.environ if environ is None else environ
    if env.get(INPUT_ENV) and env.get(OUTPUT_ENV):
        with urllib.request.urlopen(env[INPUT_ENV], timeout=60) as response:
            resource_list = json.loads(response.read())
        answer = process(resource_list, fn)
        data = json.dumps(answer).encode()
        request = urllib.request.Request(
            env[OUTPUT_ENV],
            data=data,
            method="PUT",
            headers={"x-ms-blob-type": "BlockBlob", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60):
            pass
    else:
        resource_list = json.load(stdin or sys.stdin)
        answer = process(resource_list, fn)
        out = stdout or sys.stdout
        json.dump(answer, out)
        out.write("\n")
        out.flush()
    return 1 if any(r.get("severity", "error") == "error" for r in answer["results"]) else 0
