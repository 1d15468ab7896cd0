"""One operator of the fault soak (bench/soak.py): `synos suspend/resume/set` in a loop, in a process of
its own, while passes run and faults are injected.

Each writer owns its keys (apps to suspend and resume, one runtime setting), so whatever a writer
reports as done must be what the table holds at the end, or a later attempt of the same writer (whose
result it could not tell) wrote it. Every write is made unique where the table can keep it (the
suspend reason names the writer and the attempt; the setting's value changes every time), and every
attempt is logged as one JSON line: key, value, start, end, exit code.

    python -m bench.soak_writer --id w0 --apps app-040,app-041 --setting max_concurrent --seed 7 \
        --log PATH --stop PATH
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import random
import time
from pathlib import Path

from synoscd.cli.main import main as synos

# The runtime setting a writer owns -> (CLI option, values it cycles through).
SETTINGS = {
    "max_concurrent": ("--max-concurrent", [4, 5, 6, 7, 8, 9, 10, 11, 12]),
    "applied_history": ("--applied-history", [5, 6, 7, 8, 9, 10, 11, 12]),
    "rollout_cooldown_seconds": ("--rollout-cooldown", [30.0, 31.0, 32.0, 33.0, 34.0, 35.0, 36.0]),
}


def run(writer: str, apps: list[str], setting: str, seed: int, log: Path, stop: Path, pause: float) -> None:
    rng = random.Random(seed)
    option, values = SETTINGS[setting]
    last_value = None
    n = 0
    with log.open("a", encoding="utf-8") as out:
        while not stop.exists():
            n += 1
            if rng.random() < 0.7:
                app = rng.choice(apps)
                suspend = rng.random() < 0.5
                reason = f"{writer}-{n}"
                argv = ["suspend", app, "--reason", reason] if suspend else ["resume", app]
                entry = {"key": f"flags/{app}", "suspended": suspend, "reason": reason if suspend else ""}
            else:
                value = rng.choice([v for v in values if v != last_value])
                last_value = value
                argv = ["set", option, str(value)]
                entry = {"key": f"settings/{setting}", "value": value}
            started = time.time()
            sink = io.StringIO()
            with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
                try:
                    rc = synos([*argv, "--yes", "-o", "json"])
                except BaseException as exc:  # logged as an attempt of unknown result
                    rc = f"raised {type(exc).__name__}"
            entry.update(writer=writer, n=n, argv=argv, start=started, end=time.time(), rc=rc)
            if rc != 0:
                entry["output"] = sink.getvalue()[-300:]
            out.write(json.dumps(entry) + "\n")
            out.flush()
            time.sleep(rng.uniform(0.2, pause))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.soak_writer")
    parser.add_argument("--id", required=True)
    parser.add_argument("--apps", required=True, help="comma-separated apps this writer owns")
    parser.add_argument("--setting", required=True, choices=sorted(SETTINGS))
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--stop", type=Path, required=True, help="the writer stops once this file exists")
    parser.add_argument("--pause", type=float, default=2.0, help="longest pause between two writes")
    a = parser.parse_args()
    run(a.id, a.apps.split(","), a.setting, a.seed, a.log, a.stop, a.pause)
