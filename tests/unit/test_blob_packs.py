"""The blob cache's packs (state/blobcache.py): what is packed is unpacked; a damaged pack is refused
(a cache miss) or yields only blobs exactly as packed, never other content."""

from __future__ import annotations

import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from synoscd.sources.snapshot import git_blob_id
from synoscd.state import blobcache

contents = st.lists(st.binary(max_size=3000), max_size=30)


@given(contents)
def test_what_is_packed_is_unpacked(datas: list[bytes]) -> None:
    blobs = {git_blob_id(d): d for d in datas}
    packed = blobcache.pack(blobs)
    assert blobcache.unpack(packed) == blobs
    entity = blobcache.pack_entity("p00000", packed)
    assert all(
        len(v) <= blobcache.CHUNK_BYTES for k, v in entity.items() if k.startswith("c") and k != "chunks"
    )
    assert blobcache.entity_pack(entity) == packed


@given(contents, st.integers(min_value=1, max_value=200))
def test_a_cut_pack_is_refused_or_yields_only_whole_blobs(datas: list[bytes], cut: int) -> None:
    """Cut inside a record: refused. Cut between records: the whole records before the cut, each
    exactly as packed (the source checks every blob against its git id anyway)."""
    blobs = {git_blob_id(d): d for d in datas}
    records = zlib.decompress(blobcache.pack(blobs))
    short = zlib.compress(records[: max(len(records) - cut, 0)])
    try:
        read = blobcache.unpack(short)
    except ValueError:
        return
    assert len(read) < len(blobs) or not blobs
    assert all(blobs[sha] == data for sha, data in read.items())


def test_not_a_pack_is_refused() -> None:
    with pytest.raises(ValueError, match="not a pack"):
        blobcache.unpack(b"plain text someone wrote into the table")


def test_groups_keep_packs_small_and_skip_what_is_not_persisted() -> None:
    big = b"x" * (blobcache.MAX_BLOB + 1)
    blobs = {git_blob_id(bytes([i]) * 250_000): bytes([i]) * 250_000 for i in range(5)}
    groups = list(blobcache._groups({**blobs, git_blob_id(big): big, "not-a-sha": b"a"}))
    assert sum(len(g) for g in groups) == 5
    assert all(sum(map(len, g.values())) <= blobcache.MAX_PACK_BYTES for g in groups)
