"""The blob cache is trusted only as far as git's own object ids: check ours against git's."""

from __future__ import annotations

import subprocess

from hypothesis import given, settings
from hypothesis import strategies as st

from synoscd.sources.github import BlobCache
from synoscd.sources.snapshot import git_blob_id


@settings(max_examples=25, deadline=None)
@given(st.binary(max_size=4096))
def test_git_blob_id_is_what_git_computes(data: bytes) -> None:
    out = subprocess.run(["git", "hash-object", "--stdin"], input=data, capture_output=True, check=True)
    assert git_blob_id(data) == out.stdout.decode().strip()


def test_one_changed_byte_changes_the_id() -> None:
    assert git_blob_id(b"image: nginx:1\n") != git_blob_id(b"image: nginx:2\n")
    assert git_blob_id(b"") == "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"  # git's empty blob


def test_blob_cache_discard_frees_its_bytes() -> None:
    cache = BlobCache(max_bytes=10)
    cache.put("a", b"12345")
    cache.put("b", b"12345")
    cache.discard("a")
    cache.discard("missing")
    cache.put("c", b"12345")
    assert "a" not in cache and cache.get("b") == b"12345" and cache.get("c") == b"12345"
