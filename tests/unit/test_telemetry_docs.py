"""docs/telemetry.md lists exactly the instruments synoscd/telemetry records, with their kinds, units
and attributes; the telemetry facade imports no OpenTelemetry module while telemetry is off."""

from __future__ import annotations

import re
import subprocess
import sys

from synoscd.telemetry.instruments import INSTRUMENTS
from tests.conftest import REPO_ROOT

ROW = re.compile(r"^\| `(synoscd\.[a-z_.]+)` \| (\w+) \| `([^`]*)` \| ([^|]*) \|")


def test_the_metrics_table_matches_the_instruments() -> None:
    documented = {}
    for line in (REPO_ROOT / "docs" / "telemetry.md").read_text().splitlines():
        m = ROW.match(line)
        if m:
            attrs = tuple(re.findall(r"`([a-z_]+)`", m.group(4)))
            documented[m.group(1)] = (m.group(2), m.group(3), attrs)
    recorded = {i.name: (i.kind, i.unit, i.attributes) for i in INSTRUMENTS}
    assert documented == recorded


def test_units_are_ucum_or_annotations() -> None:
    for i in INSTRUMENTS:
        assert i.unit in ("s", "%") or re.fullmatch(r"\{[a-z]+\}", i.unit), i
        assert i.kind in ("counter", "histogram", "gauge") and i.description


def test_no_opentelemetry_import_while_telemetry_is_off() -> None:
    code = (
        "import sys, function_app\n"
        "from synoscd import telemetry\n"
        "from synoscd.engine import reconcile\n"
        "with telemetry.span('x'): pass\n"
        "telemetry.count('synoscd.passes')\n"
        "assert not telemetry.ensure(), 'telemetry is off'\n"
        "print(sorted(m for m in sys.modules if m.startswith(('opentelemetry', 'azure.monitor'))))\n"
    )
    env = {"PATH": "/usr/bin:/bin", "HOME": str(REPO_ROOT)}
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
