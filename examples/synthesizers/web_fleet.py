"""The web-fleet synthesizer: one App per entry of the fleet file, all alike but for what the entry
says. Change the template here (or the image this runs as), and every app of every composition that
uses it follows, one composition at a time (a deferred rollout).

Runs as an ACA Job execution (the Synthesizer's image) or locally:
    python examples/synthesizers/web_fleet.py < resource-list.json
"""

from __future__ import annotations

from typing import Any

from synoscd import krm


def synthesize(inputs: krm.Inputs) -> list[dict[str, Any]]:
    fleet = inputs.data("fleet")
    image = fleet.get("image")
    if not image:
        inputs.error("the fleet input needs an image")
        return []
    defaults = inputs.config  # the composition's spec.config
    apps = []
    for entry in fleet.get("apps", []):
        name = f"{inputs.name}-{entry['name']}"
        replicas = int(entry.get("replicas", defaults.get("replicas", 1)))
        if replicas < 1:
            inputs.error(f"app {entry['name']}: replicas must be at least 1")
            continue
        apps.append(
            krm.app(
                name,
                image=entry.get("image", image),
                ingress={"external": True, "targetPort": int(defaults.get("port", 80))},
                scale={"minReplicas": replicas, "maxReplicas": max(replicas, 3)},
                environment=[{"name": "SITE", "value": entry["name"]}],
                tags={"fleet": inputs.name},
            )
        )
    inputs.info(f"{len(apps)} apps")
    return apps


if __name__ == "__main__":
    raise SystemExit(krm.run(synthesize))
