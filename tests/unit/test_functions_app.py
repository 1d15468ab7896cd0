"""The Functions app's shape without the host: indexing, raw bindings, cold-start imports, the
signature check (vectors computed independently here), the timer's decision, the local host's
NCRONTAB, and the settings sample."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import subprocess
import sys

import pytest

from emulators.functions_host import Schedule, timespan
from emulators.settings_sample import render
from synoscd import webhook
from synoscd.functions.handlers import due
from tests.conftest import REPO_ROOT


def test_indexing_yields_exactly_the_documented_functions_and_bindings() -> None:
    import function_app

    functions = {
        f.get_function_name(): [json.loads(b) for b in f.get_raw_bindings()]
        for f in function_app.app.get_functions()
    }
    assert set(functions) == {
        "reconcile_timer",
        "github_webhook",
        "reconcile_queue",
        "health",
        "health_details",
        "dashboard",
        "api_v1",
    }
    assert functions["reconcile_timer"] == [
        {
            "direction": "IN",
            "type": "timerTrigger",
            "name": "timer",
            "schedule": "%SYNOSCD_TIMER_SCHEDULE%",
            "runOnStartup": False,
            "useMonitor": True,
        }
    ]
    webhook_in = functions["github_webhook"][0]
    assert (webhook_in["type"], webhook_in["route"], webhook_in["methods"], webhook_in["authLevel"]) == (
        "httpTrigger",
        "github/webhook",
        ["POST"],
        "ANONYMOUS",
    )
    health_in = functions["health"][0]
    assert (health_in["route"], health_in["methods"], health_in["authLevel"]) == (
        "health",
        ["GET"],
        "ANONYMOUS",
    )
    details_in = functions["health_details"][0]
    assert (details_in["route"], details_in["authLevel"]) == ("health/details", "FUNCTION")
    assert all(
        b[1] == {"direction": "OUT", "type": "http", "name": "$return"}
        for b in (functions["github_webhook"], functions["health"], functions["health_details"])
    )
    assert functions["reconcile_queue"] == [
        {
            "direction": "IN",
            "type": "queueTrigger",
            "name": "msg",
            "queueName": "%SYNOSCD_QUEUE_NAME%",
            "connection": "AzureWebJobsStorage",
        }
    ]
    host = json.loads((REPO_ROOT / "host.json").read_text())
    assert host["extensions"]["http"]["routePrefix"] == "api"
    # The queue's poison handling: a failing message is retried, then moved to <queue>-poison.
    queues = host["extensions"]["queues"]
    assert queues["maxDequeueCount"] >= 2 and queues["messageEncoding"] == "base64"


HEAVY = ("azure.identity", "azure.mgmt", "azure.data", "azure.keyvault", "github", "requests", "jinja2")


def test_importing_function_app_and_rejecting_a_webhook_load_no_sdk() -> None:
    code = "\n".join(
        [
            "import sys, json",
            "import function_app",
            "from synoscd.functions import handlers",
            f"heavy = {HEAVY!r}",
            "after_import = sorted(m for m in sys.modules if m.startswith(heavy))",
            "status, _ = handlers.on_webhook({'X-GitHub-Event': 'push'}, b'{}')",
            "bad = {'X-GitHub-Event': 'push', 'X-Hub-Signature-256': 'sha256=00'}",
            "status2, _ = handlers.on_webhook(bad, b'{}')",
            "after_reject = sorted(m for m in sys.modules if m.startswith(heavy))",
            "print(json.dumps([status, status2, after_import, after_reject]))",
        ]
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "SYNOSCD_GITHUB_WEBHOOK_SECRET": "s3cret"},
    )
    assert out.returncode == 0, out.stderr
    status, status2, after_import, after_reject = json.loads(out.stdout)
    assert (status, status2) == (401, 401)
    assert after_import == [] and after_reject == []


# -- the signature check ------------------------------------------------------------------------------

SECRET = "It's a Secret to Everybody"


def independent(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.HMAC(secret.encode(), body, hashlib.sha256).hexdigest()


def test_github_documented_vector() -> None:
    # The example from GitHub's webhook documentation.
    body = b"Hello, World!"
    expected = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert webhook.signature(SECRET, body) == expected
    assert webhook.verify(SECRET, body, expected)


@pytest.mark.parametrize(
    "body", [b"{}", '{"commit": "caf\u00e9 \u2014 \u65e5\u672c"}'.encode(), b"\x00\xff" * 50]
)
def test_signature_matches_an_independent_computation(body: bytes) -> None:
    assert webhook.verify(SECRET, body, independent(SECRET, body))


def test_tampered_body_wrong_secret_and_missing_header_fail() -> None:
    body = '{"ref": "refs/heads/main", "note": "\u00fcber"}'.encode()
    good = independent(SECRET, body)
    assert not webhook.verify(SECRET, body + b" ", good)
    assert not webhook.verify("another secret", body, good)
    assert not webhook.verify(SECRET, body, None)
    assert not webhook.verify(SECRET, body, "sha1=" + good.split("=", 1)[1])
    assert not webhook.verify("", body, independent("", body)), "no secret configured never verifies"


def test_event_decisions() -> None:
    push = json.dumps(
        {"ref": "refs/heads/main", "after": "ab" * 20, "repository": {"full_name": "Org/Ops"}}
    ).encode()
    assert webhook.decide("push", push, "org/ops", "main").run
    assert not webhook.decide("push", push, "org/other", "main").run
    assert webhook.decide("push", push, "org/ops", "release").reason.startswith(
        "ignored: push to refs/heads/main"
    )
    assert webhook.decide("ping", b"{}", "org/ops", "main").status == 200
    assert webhook.decide("issues", b"{}", "org/ops", "main").status == 204
    assert webhook.decide("push", b"not json", "org/ops", "main").status == 400


# -- the timer ------------------------------------------------------------------------------------------


def test_the_anonymous_health_answer_is_liveness_and_version_only() -> None:
    from synoscd import __version__
    from synoscd.functions.handlers import on_health

    assert on_health() == (200, {"status": "ok", "version": __version__})


def test_host_json_timespans() -> None:
    assert timespan("00:00:05") == 5.0
    assert timespan("00:01:00.5") == 60.5
    assert timespan("1.02:00:00") == 93600.0


def test_timer_runs_when_due_or_requested() -> None:
    assert due(1000.0, None, 300, 0) == "first pass"
    assert due(1000.0, 900.0, 300, 0) is None
    assert due(1200.0, 900.0, 300, 0) == "interval 300 s passed"
    assert due(1000.0, 990.0, 300, 2) == "2 requested"


def test_ncrontab_schedules() -> None:
    every_minute = Schedule.parse("0 */1 * * * *")
    start = dt.datetime(2026, 11, 22, 10, 0, 30)
    assert every_minute.next_after(start) == dt.datetime(2026, 11, 22, 10, 1, 0)
    weekdays_9 = Schedule.parse("0 0 9 * * 1-5")
    assert weekdays_9.next_after(dt.datetime(2026, 11, 21, 12, 0, 0)) == dt.datetime(2026, 11, 23, 9, 0, 0)
    assert Schedule.parse("*/15 * * * * *").next_after(start) == dt.datetime(2026, 11, 22, 10, 0, 45)
    with pytest.raises(ValueError):
        Schedule.parse("* * * * *")


def test_settings_sample_lists_every_setting_and_is_up_to_date() -> None:
    committed = (REPO_ROOT / "local.settings.sample.json").read_text()
    assert committed == render(), "run: python -m emulators.settings_sample"
    doc = json.loads(committed)
    assert all(doc["Notes"][name] for name in doc["Values"])
