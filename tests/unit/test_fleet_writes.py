"""The ARM write budget's bucket (synoscd/fleet/writes.py), pure: never more writes than the burst plus
the refill, nothing while ARM's Retry-After runs, and a wait that says when the next write may go."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from synoscd.fleet.writes import Bucket, close, grant, retry_after_of

steps = st.lists(
    st.tuples(st.floats(min_value=0, max_value=5, allow_nan=False), st.integers(min_value=1, max_value=20)),
    max_size=60,
)


@given(steps, st.floats(min_value=0.5, max_value=50), st.integers(min_value=1, max_value=200))
def test_no_more_writes_than_the_burst_and_the_refill_allow(
    moves: list[tuple[float, int]], rate: float, burst: int
) -> None:
    now, bucket, granted = 1000.0, None, 0
    for dt, want in moves:
        now += dt
        got, bucket, wait = grant(bucket, want, now, rate, burst)
        assert 0 <= got <= want
        assert (got == 0) == (wait > 0), "a wait exactly when nothing was granted"
        granted += got
        assert granted <= burst + rate * (now - 1000.0) + 1e-6
        assert 0 <= bucket.tokens <= burst


def test_a_429_closes_the_bucket_until_its_retry_after_then_it_refills_from_empty() -> None:
    full = Bucket(100.0, 0.0)
    closed = close(full, 10.0, 3.0)
    assert grant(closed, 5, 11.0, 10.0, 100) == (0, Bucket(10.0, 11.0, 13.0), 2.0)
    got, after, wait = grant(closed, 5, 13.5, 10.0, 100)
    assert (got, wait) == (5, 0.0) and after.tokens == 30.0, "3.5 s of refill from empty, 5 taken"
    assert close(close(None, 0.0, 5.0), 1.0, 1.0).closed_until == 5.0, (
        "a shorter Retry-After shortens nothing"
    )


def test_an_empty_bucket_says_how_long_until_the_next_write() -> None:
    got, _bucket, wait = grant(Bucket(0.5, 0.0), 1, 0.0, 2.0, 10)
    assert got == 0 and wait == 0.25


def test_retry_after_in_seconds_or_milliseconds() -> None:
    assert retry_after_of({"Retry-After": "7"}) == 7.0
    assert retry_after_of({"retry-after-ms": "1500"}) == 1.5
    assert retry_after_of({}) == 10.0
