"""`make bench` ends with a table a person reads beside the JSON; its figures come from the report."""

from __future__ import annotations

import json
import re

from bench.__main__ import summary

REPORT = {
    "args": {"apps": 1000, "changes": 100, "lro": 2.0},
    "validate": {"files": 1000, "cold_median_s": 0.4, "warm_median_s": 0.11},
    "pass": {
        "engine_nochange": {
            "cold": {"seconds": 1.29, "arm_calls": 12, "github_calls": 2},
            "warm": {"seconds": 0.83, "arm_calls": 11, "github_calls": 1},
            "peak_rss_mb": 113.0,
        },
        "seq_nochange": {"seconds": 26.0},
        "engine_change": {
            "seconds": 3.84,
            "arm_calls": 511,
            "arm_writes": 100,
            "github_calls": 103,
            "peak_rss_mb": 143.0,
        },
        "seq_change": {"seconds": 233.2},
    },
}


def test_the_summary_table_shows_medians_side_by_side_with_ratios() -> None:
    text = summary(json.loads(json.dumps(REPORT)))
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["WORKLOAD", "ENGINE", "(MEDIAN)"]
    nochange = next(line for line in lines if line.startswith("no-change pass, 1000 apps, warm"))
    assert re.search(r"0\.83 s\s+26\.0 s\s+31x\s+ARM 11, GitHub 1; RSS 113\.0 MB", nochange), nochange
    change = next(line for line in lines if line.startswith("100-change pass"))
    assert "3.84 s" in change and "233.2 s" in change and "61x" in change and "100 writes" in change
    assert "…" not in text and "{" not in text


def test_the_summary_of_a_validate_only_report_has_no_pass_rows() -> None:
    text = summary({**REPORT, "pass": {}})
    assert len(text.splitlines()) == 3 and "0.40 s" in text
