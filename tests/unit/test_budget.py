"""The pass budget and the bounded retry policy (synoscd/budget.py), through azure-core's real
pipeline and RetryPolicy with a stub transport that answers from a script and records each sleep."""

from __future__ import annotations

import math
import time
from typing import Any

import pytest
from azure.core.pipeline import Pipeline
from azure.core.pipeline.policies import RetryPolicy
from azure.core.pipeline.transport import HttpTransport
from azure.core.rest import HttpRequest
from azure.core.utils import CaseInsensitiveDict
from hypothesis import given
from hypothesis import strategies as st

from synoscd.budget import BoundedRetry, Budget, LeaseLost


class Answer:
    def __init__(self, request: Any, status: int, headers: dict[str, str]) -> None:
        self.request = request
        self.status_code = status
        self.headers = CaseInsensitiveDict(headers)
        self.reason = "stub"
        self.content_type = None

    def text(self, encoding: str | None = None) -> str:
        return ""

    def body(self) -> bytes:
        return b""


class ScriptedTransport(HttpTransport):
    def __init__(self, answers: list[tuple[int, dict[str, str]]]) -> None:
        self.answers = list(answers)
        self.sent = 0
        self.slept: list[float] = []

    def send(self, request: Any, **kwargs: Any) -> Answer:
        self.sent += 1
        status, headers = self.answers.pop(0)
        return Answer(request, status, headers)

    def sleep(self, duration: float) -> None:
        self.slept.append(duration)

    def open(self) -> None: ...

    def close(self) -> None: ...

    def __exit__(self, *args: Any) -> None: ...


class Bounded(BoundedRetry, RetryPolicy):
    pass


def run(answers: list[tuple[int, dict[str, str]]], **policy: Any) -> tuple[int, ScriptedTransport]:
    transport = ScriptedTransport(answers)
    pipeline = Pipeline(transport, policies=[Bounded(**policy)])
    response = pipeline.run(HttpRequest("GET", "https://127.0.0.1/x"))
    return response.http_response.status_code, transport


def test_a_retry_after_that_fits_is_honoured_exactly() -> None:
    status, transport = run([(429, {"Retry-After": "3"}), (200, {})], budget=lambda: 60.0, max_wait=10)
    assert status == 200 and transport.sent == 2 and transport.slept == [3.0]


def test_a_retry_after_beyond_the_budget_is_the_answer_at_once() -> None:
    status, transport = run([(429, {"Retry-After": "15"}), (200, {})], budget=lambda: 5.0, max_wait=30)
    assert status == 429 and transport.sent == 1 and transport.slept == []


def test_a_retry_after_beyond_the_longest_wait_is_the_answer_at_once() -> None:
    status, transport = run([(503, {"Retry-After": "60"}), (200, {})], budget=lambda: math.inf, max_wait=10)
    assert status == 503 and transport.sent == 1 and transport.slept == []


def test_no_budget_left_means_no_retry_at_all() -> None:
    status, transport = run([(500, {}), (200, {})], budget=lambda: 0.0)
    assert status == 500 and transport.sent == 1


@given(st.floats(min_value=0.05, max_value=2.0), st.integers(min_value=2, max_value=4))
def test_backoff_is_jittered_between_half_and_all_of_the_exponential_value(factor: float, fails: int) -> None:
    answers = [(500, {})] * fails + [(200, {})]
    status, transport = run(
        answers, retry_total=5, retry_status=5, retry_backoff_factor=factor, retry_backoff_max=100
    )
    assert status == 200
    # azure-core: the first retry is immediate (no sleep), the n-th after factor * 2 ** (n - 1)
    assert len(transport.slept) == fails - 1
    for n, slept in enumerate(transport.slept, start=2):
        full = factor * 2 ** (n - 1)
        assert full / 2 <= slept <= full


def test_budget_is_the_nearer_of_deadline_and_lease() -> None:
    budget = Budget()
    assert budget.remaining() == math.inf
    budget.begin(100)
    budget.hold(time.monotonic() + 5)
    assert 4 < budget.remaining() <= 5
    budget.check()  # held: no error
    budget.hold(time.monotonic() - 0.01)  # the lease ran out without a renewal
    assert budget.remaining() == 0.0 and budget.lost
    with pytest.raises(LeaseLost, match="renewed"):
        budget.check()
    budget.end()
    assert budget.remaining() == math.inf and budget.lost is None


def test_a_lost_lease_stops_writes_and_waits() -> None:
    budget = Budget()
    budget.begin(100)
    budget.hold(time.monotonic() + 50)
    budget.lose("the lease was taken by timer-1")
    assert budget.remaining() == 0.0
    with pytest.raises(LeaseLost, match="timer-1"):
        budget.check()
    assert not isinstance(LeaseLost("x"), Exception), "no `except Exception` in a worker swallows it"
