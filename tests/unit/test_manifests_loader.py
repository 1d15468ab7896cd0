"""Bounded YAML loading: data, line marks, and hostile input answered with errors."""

from __future__ import annotations

import textwrap

import pytest
from hypothesis import given
from hypothesis import strategies as st
from yaml.nodes import ScalarNode
from yaml.resolver import Resolver

from synoscd.manifests import yaml_loader
from synoscd.manifests.errors import ManifestError
from synoscd.manifests.yaml_loader import load_documents

FILE = "apps/x.yaml"


def load(text: str | bytes, **kwargs: int) -> tuple[list[yaml_loader.LoadedDocument], list[ManifestError]]:
    data = text if isinstance(text, bytes) else textwrap.dedent(text).lstrip("\n").encode()
    return load_documents(FILE, data, **kwargs)


def test_lines_are_one_based_and_point_at_keys_and_items() -> None:
    docs, errors = load(
        """
        apiVersion: synoscd.io/v1alpha1
        kind: App
        metadata:
          name: web
        spec:
          containers:
            - name: app
              image: nginx:1.27
          tags: {a: b}
        """
    )
    assert errors == []
    [doc] = docs
    assert doc.line == 1
    assert doc.lines[("metadata", "name")] == 4
    assert doc.lines[("spec",)] == 5
    assert doc.lines[("spec", "containers", 0)] == 7
    assert doc.lines[("spec", "containers", 0, "image")] == 8
    assert doc.lines[("spec", "tags", "a")] == 9
    # A missing field falls back to its nearest parent present in the document.
    assert doc.line_of(("spec", "containers", 0, "cpu")) == 7
    assert doc.line_of(("nothing", "here")) == 1


def test_multi_document_files_keep_every_document_and_skip_empty_ones() -> None:
    docs, errors = load("---\na: 1\n---\n---\nnull\n---\nb: 2\n...\n")
    assert errors == []
    assert [(d.index, d.line, d.data) for d in docs] == [(0, 2, {"a": 1}), (1, 7, {"b": 2})]


@pytest.mark.parametrize("text", ["", "   \n", "# only a comment\n", "---\n", "---\n...\n---\n~\n"])
def test_a_file_without_documents_is_an_error(text: str) -> None:
    # Decision: an empty file is an error, so a file truncated by accident cannot read as "deleted"
    # (and cause a prune); empty documents next to real ones are skipped.
    assert load(text) == (
        [],
        [ManifestError(FILE, 1, "", "file contains no manifests; add one or delete the file")],
    )


def test_oversize_file_is_refused_before_parsing() -> None:
    content = b"".join(b"k%d: 1\n" % i for i in range(10))  # 60 bytes
    assert load(content, max_file_bytes=59) == (
        [],
        [ManifestError(FILE, 1, "", "file is larger than 59 bytes; split it into smaller files")],
    )
    assert load(content, max_file_bytes=60)[1] == []
    assert load(b"x" * (1024 * 1024 + 1)) == (
        [],
        [ManifestError(FILE, 1, "", "file is larger than 1 MiB; split it into smaller files")],
    )


def test_non_utf8_file_is_refused_with_the_line_of_the_bad_byte() -> None:
    assert load(b"a: 1\nb: caf\xe9\n") == (
        [],
        [ManifestError(FILE, 2, "", "file is not valid UTF-8 (byte 0xe9 on line 2); save it as UTF-8")],
    )


def test_byte_order_mark_and_crlf_are_accepted() -> None:
    docs, errors = load(b"\xef\xbb\xbfa: 1\r\nb:\r\n  c: 2\r\n")
    assert errors == []
    assert docs[0].data == {"a": 1, "b": {"c": 2}}
    assert docs[0].lines[("b", "c")] == 3


def test_syntax_error_names_the_line_and_keeps_earlier_documents() -> None:
    docs, errors = load("a: 1\n---\nb: [1, 2\nc: 3\n")
    assert [d.data for d in docs] == [{"a": 1}]
    assert errors == [
        ManifestError(
            FILE,
            4,
            "",
            "YAML syntax error: while parsing a flow sequence, did not find expected ',' or ']'; fix the "
            "YAML",
        )
    ]


def test_control_characters_are_a_syntax_error() -> None:
    [error] = load(b"a: 1\nb: \x01\n")[1]
    assert error == ManifestError(
        FILE,
        2,
        "",
        "YAML syntax error: unacceptable character #x0001: control characters are not allowed; fix the YAML",
    )


def test_duplicate_keys_are_errors_and_the_first_value_stays() -> None:
    docs, errors = load("spec:\n  a: 1\n  a: 2\n")
    assert errors == [ManifestError(FILE, 3, "spec.a", "duplicate key 'a' (first at line 2); remove one")]
    assert docs[0].data == {"spec": {"a": 1}} and not docs[0].clean


def test_unsupported_tags_are_errors_and_the_value_is_unreadable() -> None:
    docs, errors = load("a: !Ref x\nb: !!python/object:os.system echo\nc: !!set {x: null}\n")
    assert errors == [
        ManifestError(FILE, 1, "a", "unsupported YAML tag '!Ref'; remove it"),
        ManifestError(
            FILE, 2, "b", "unsupported YAML tag 'tag:yaml.org,2002:python/object:os.system'; remove it"
        ),
        ManifestError(FILE, 3, "c", "unsupported YAML tag 'tag:yaml.org,2002:set'; remove it"),
    ]
    assert docs[0].data == {"a": None, "b": None, "c": None}
    assert docs[0].unreadable == {("a",), ("b",), ("c",)}


def test_unreadable_scalars_are_errors_not_crashes() -> None:
    _, errors = load("n: " + "9" * 5000 + "\nd: 2024-02-31\n")
    assert [(e.line, e.field) for e in errors] == [(1, "n"), (2, "d")]
    assert errors[0].message.startswith("value '9999") and errors[0].message.endswith(
        "cannot be read as int; quote it"
    )
    assert errors[1].message == "value '2024-02-31' cannot be read as timestamp; quote it"


def test_mapping_keys_must_be_plain_values() -> None:
    assert load("? [a]\n: 1\nb: 2\n")[1] == [
        ManifestError(FILE, 1, "", "mapping keys must be plain values, not lists or mappings")
    ]


def test_merge_keys_work_and_explicit_keys_win() -> None:
    docs, errors = load(
        """
        base: &base
          x: 1
          y: {z: 2}
        m:
          <<: *base
          x: 5
        """
    )
    assert errors == []
    assert docs[0].data["m"] == {"x": 5, "y": {"z": 2}}
    assert docs[0].lines[("m", "x")] == 6
    assert docs[0].lines[("m", "y", "z")] == 3  # where the merged value is written


def test_billion_laughs_is_refused_quickly() -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, cur in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    docs, errors = load("\n".join(lines) + "\n")
    assert docs == []
    assert errors == [
        ManifestError(
            FILE, 1, "", "document expands to more than 100000 values (YAML aliases?); write it out plainly"
        )
    ]


def test_too_many_aliases_are_refused() -> None:
    text = "x: &a [1]\ny: [" + ", ".join(["*a"] * 101) + "]\n"
    assert load(text)[1] == [
        ManifestError(FILE, 1, "", "more than 100 YAML aliases in one document; write the values out")
    ]
    assert load("x: &a [1]\ny: [" + ", ".join(["*a"] * 100) + "]\n")[1] == []


def test_self_referencing_alias_is_refused() -> None:
    assert load("a: &a [*a]\n")[1] == [
        ManifestError(FILE, 1, "", "YAML nested deeper than 64 levels; flatten the document")
    ]


@pytest.mark.parametrize("depth", [65, 200, 100_000])
def test_deep_nesting_is_refused_on_both_paths(depth: int) -> None:
    # 65 and 200 brackets go through libyaml's composer (few indicators), 100,000 through ours.
    docs, errors = load("a: " + "[" * depth + "]" * depth + "\n")
    assert docs == []
    assert errors == [ManifestError(FILE, 1, "", "YAML nested deeper than 64 levels; flatten the document")]


def test_nesting_within_the_limit_is_fine() -> None:
    expected: list[object] = []
    for _ in range(61):
        expected = [expected]
    docs, errors = load("a: " + "[" * 62 + "]" * 62 + "\n")  # 64 levels with the root mapping
    assert errors == []
    assert docs[0].data == {"a": expected}


def test_deep_block_nesting_is_refused() -> None:
    text = "".join(" " * i + "a:\n" for i in range(300))
    assert load(text)[1] == [
        ManifestError(FILE, 64, "", "YAML nested deeper than 64 levels; flatten the document")
    ]


def test_huge_flat_files_hit_the_node_budget() -> None:
    text = "[" + "1," * 150_000 + "1]\n"
    assert load(text)[1] == [
        ManifestError(FILE, 1, "", "file has more than 100000 YAML values; split it into smaller files")
    ]


def test_fast_and_safe_paths_read_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    text = """
        apiVersion: synoscd.io/v1alpha1
        kind: App
        metadata: {name: web, labels: {"synoscd.io/managed": "true"}}
        spec:
          containers:
            - &c {name: app, image: "nginx:1.27", cpu: 0.25, memory: 0.5Gi}
          environment:
            - name: A
              value: |
                multi
                line
          suspend: no
        ---
        x: [1, 2.5, null, true, 2001-12-14]
        """
    fast = load(text)
    monkeypatch.setattr(yaml_loader, "FAST_PATH_MAX_INDICATORS", -1)
    safe = load(text)
    assert fast == safe
    assert fast[0][0].data["spec"]["suspend"] is False


def test_scalars_are_typed_as_the_safe_loader_types_them() -> None:
    docs, _ = load("a: 1\nb: 1.5\nc: true\nd: null\ne: '1'\nf: 0x10\ng: 1e3\n")
    assert docs[0].data == {"a": 1, "b": 1.5, "c": True, "d": None, "e": "1", "f": 16, "g": "1e3"}


# -- the resolver's remembered tags ----------------------------------------------------------------------

_PLAIN_SAMPLES = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        ["true", "False", "null", "~", "0x1F", "0o17", "1_000", "1e3", ".inf", "-.NaN", "2026-12-02"]
    ),
    st.from_regex(r"[-+]?[0-9][0-9_.:eE+-]{0,12}", fullmatch=True),
)


@given(_PLAIN_SAMPLES)
def test_a_remembered_plain_tag_is_what_pyyaml_resolves(value: str) -> None:
    """The memo in front of PyYAML's implicit resolvers never changes what a plain scalar is read as,
    asked once (a miss) or again (a hit)."""
    implicit = (True, False)
    expected = Resolver().resolve(ScalarNode, value, implicit)
    resolver = yaml_loader._Resolver()
    assert resolver.resolve(ScalarNode, value, implicit) == expected
    assert resolver.resolve(ScalarNode, value, implicit) == expected
    assert resolver.resolve(ScalarNode, value, (False, True)) == Resolver().resolve(
        ScalarNode, value, (False, True)
    )


def test_the_remembered_tags_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(yaml_loader, "_PLAIN_TAGS", {})
    monkeypatch.setattr(yaml_loader, "_PLAIN_TAGS_MAX", 3)
    resolver = yaml_loader._Resolver()
    for value in ["a", "1", "true", "b", "2", "x" * 300]:
        resolver.resolve(ScalarNode, value, (True, False))
    assert list(yaml_loader._PLAIN_TAGS) == ["a", "1", "true"], "at most the bound, and no long values"
    docs, errors = load_documents("a.yaml", b"n: 1\nb: true\ns: b\n")
    assert not errors and docs[0].data == {"n": 1, "b": True, "s": "b"}
