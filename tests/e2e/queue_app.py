"""A Functions app for tests of the local host's queue triggers: one function that fails on every
message it gets, another that records them (the queue names come from app settings, as in Azure)."""

from __future__ import annotations

import azure.functions as func

app = func.FunctionApp()
attempts: list[tuple[str, int]] = []


@app.function_name("always_fails")
@app.queue_trigger(arg_name="msg", queue_name="%TEST_FAILING_QUEUE%", connection="AzureWebJobsStorage")
def always_fails(msg: func.QueueMessage) -> None:
    attempts.append((msg.get_body().decode(), msg.dequeue_count or 0))
    raise RuntimeError("this function always fails")


@app.function_name("records")
@app.queue_trigger(arg_name="msg", queue_name="%TEST_GOOD_QUEUE%", connection="AzureWebJobsStorage")
def records(msg: func.QueueMessage) -> None:
    attempts.append((msg.get_body().decode(), msg.dequeue_count or 0))
