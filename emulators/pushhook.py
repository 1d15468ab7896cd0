"""The post-receive hook of the GitHub stand-in's repository (installed by the launcher with the
local Functions host): for each branch a `git push` updated, ask the stand-in to deliver GitHub's
signed push webhook to the host, and tell the pusher what the host answered (git shows it as
`remote: ...`).

    python -m emulators.pushhook SETTINGS.json   < "old-sha new-sha refs/heads/main" lines
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import requests


def deliver(settings: dict[str, str], before: str, after: str, ref: str) -> str:
    resp = requests.post(
        f"{settings['github']}/_admin/webhooks/deliver",
        json={
            "url": settings["url"],
            "secret": settings["secret"],
            "event": "push",
            "owner": settings["owner"],
            "name": settings["name"],
            "ref": ref,
            "before": before,
            "after": after,
        },
        verify=settings["ca"],
        timeout=30,
    )
    resp.raise_for_status()
    delivery = resp.json()
    if delivery.get("status") is None:
        return f"push webhook for {ref} not delivered: {delivery.get('error')}"
    try:
        body = json.loads(delivery.get("body") or "{}")
    except ValueError:
        body = {}
    summary = ", ".join(f"{k} {body[k]}" for k in ("status", "outcome", "passId", "reason") if k in body)
    return f"push webhook for {ref} -> {settings['url']}: {delivery['status']} {summary}".rstrip()


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    settings = json.loads(Path(args[0]).read_text(encoding="utf-8"))
    for line in sys.stdin:
        parts = line.split()
        if len(parts) != 3:
            continue
        before, after, ref = parts
        try:
            print(deliver(settings, before, after, ref), flush=True)
        except requests.RequestException as exc:  # the push itself succeeded: say so, do not fail it
            print(f"push webhook for {ref} not delivered: {exc}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
