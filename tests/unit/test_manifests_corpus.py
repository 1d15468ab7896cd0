"""The corpus: every bad scenario gets exactly its expected errors, the good samples none."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from synoscd.manifests import load_desired, read_tree

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
OVERSIZE = "bad/oversize.yaml"  # made here rather than committing 1 MiB


def expected() -> dict[str, list[dict[str, Any]]]:
    data = yaml.safe_load((CORPUS / "expected.yaml").read_text())
    assert isinstance(data, dict)
    return data


def bad_files() -> dict[str, bytes]:
    files = {path: data for path, data in read_tree(CORPUS).items() if path.startswith("bad/")}
    files[OVERSIZE] = b"apiVersion: synoscd.io/v1alpha1\n" + b"#" * (1024 * 1024)
    return files


def test_the_corpus_is_big_enough_and_fully_described() -> None:
    files = bad_files()
    assert len(files) >= 40
    assert sorted(expected()) == sorted(files), (
        "every bad file needs an entry in expected.yaml, and only those"
    )


def test_every_bad_file_gets_exactly_its_expected_errors() -> None:
    # All at once, as a pass would see them: duplicates and projects span files.
    desired = load_desired(bad_files())
    reported = Counter((e.file, e.line, e.field) for e in desired.errors)
    wanted: Counter[tuple[str, int, str]] = Counter()
    for file, errors in expected().items():
        for want in errors:
            key = (file, want["line"], want["field"])
            wanted[key] += 1
            matching = [e for e in desired.errors if (e.file, e.line, e.field) == key]
            assert any(want["message"] in e.message for e in matching), f"{file}: {want} not in {matching}"
    assert reported == wanted, f"unexpected: {reported - wanted}, missing: {wanted - reported}"


def test_no_bad_file_is_clean_unless_it_only_supports_another() -> None:
    desired = load_desired(bad_files())
    with_errors = {e.file for e in desired.errors}
    for file, errors in expected().items():
        assert (file in with_errors) == bool(errors), file
    assert not desired.complete


def test_the_good_document_next_to_bad_ones_is_still_loaded() -> None:
    desired = load_desired(bad_files())
    assert [(r.kind, r.name) for r in desired.resources] == [("App", "partial-good-app")]
    assert [p.name for p in desired.projects] == ["strict-team"]


def test_the_good_corpus_has_no_errors() -> None:
    desired = load_desired(read_tree(CORPUS / "good"))
    assert desired.errors == [] and desired.complete
    assert len(desired.resources) == 7 and len(desired.projects) == 1
