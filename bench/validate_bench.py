"""Parse and validate 1,000 App files (the issue's goal: under 1 s here)."""

from __future__ import annotations

import statistics
import time
from typing import Any

APP = """apiVersion: synoscd.io/v1alpha1
kind: App
metadata:
  name: app-{i:04d}
  labels:
    synoscd.io/managed: "true"
spec:
  containers:
    - name: web
      image: ghcr.io/contoso/app-{i:04d}:1.{i}
      cpu: 0.5
      memory: 1Gi
  environment:
    - name: LOG_LEVEL
      value: info
    - name: DB_PASSWORD
      valueFrom:
        secretRef: db
  secrets:
    db: https://contoso.vault.azure.net/secrets/db-{i}
  ingress:
    enabled: true
    external: true
    targetPort: 8080
    allowedOrigins: [https://shop.contoso.com]
  scale:
    minReplicas: 1
    maxReplicas: 5
  tags:
    team: shop
"""


def files(n: int) -> dict[str, bytes]:
    return {f"apps/app-{i:04d}.yaml": APP.format(i=i).encode() for i in range(n)}


def run(n: int = 1000, repeats: int = 7) -> dict[str, Any]:
    """Cold: every file parsed (a new instance, or a first pass). Warm: the per-file parse cache a warm
    instance keeps, as on a commit that changed nothing of these files."""
    from synoscd.manifests.desired import clear_parse_cache, load_desired

    data = files(n)
    load_desired(data)  # imports, schema build
    cold, warm = [], []
    for _ in range(repeats):
        clear_parse_cache()
        started = time.perf_counter()
        desired = load_desired(data)
        cold.append(time.perf_counter() - started)
        started = time.perf_counter()
        load_desired(data)
        warm.append(time.perf_counter() - started)
        assert len(desired.resources) == n and not desired.errors
    return {
        "files": n,
        "cold_median_s": round(statistics.median(cold), 3),
        "cold_min_s": round(min(cold), 3),
        "warm_median_s": round(statistics.median(warm), 3),
        "repeats": repeats,
    }
