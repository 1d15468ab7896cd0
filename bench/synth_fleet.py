"""The benchmark's synthesizer (committed into the benchmark's ops repository as synth/fleet.py): one
App per name in the `fleet` input, exactly like bench/__main__.py's hand-written APP manifests."""

import json
import sys

doc = json.load(sys.stdin)
fleet = next(i for i in doc["items"] if i["metadata"]["annotations"]["synoscd.io/input-key"] == "fleet")
items = [
    {
        "apiVersion": "synoscd.io/v1alpha1",
        "kind": "App",
        "metadata": {"name": name},
        "spec": {
            "containers": [
                {"name": "web", "image": f"ghcr.io/contoso/{name}:1", "cpu": 0.25, "memory": "0.5Gi"}
            ],
            "ingress": {"enabled": True, "external": True, "targetPort": 8080},
            "scale": {"minReplicas": 1, "maxReplicas": 3},
        },
    }
    for name in fleet["data"]["apps"]
]
json.dump({"apiVersion": "config.kubernetes.io/v1", "kind": "ResourceList", "items": items}, sys.stdout)
