"""SynosCD on Azure Functions (Python v2 programming model). Bindings only: each function parses its
trigger and calls synoscd. Importing this module loads azure.functions and nothing heavier."""

from __future__ import annotations

import json

import azure.functions as func

from synoscd.functions import handlers

app = func.FunctionApp()


def _json(status: int, body: dict[str, object]) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(body), status_code=status, mimetype="application/json")


@app.function_name("reconcile_timer")
@app.timer_trigger(
    schedule="%SYNOSCD_TIMER_SCHEDULE%", arg_name="timer", run_on_startup=False, use_monitor=True
)
def reconcile_timer(timer: func.TimerRequest) -> None:
    handlers.on_timer(past_due=bool(timer.past_due))


@app.function_name("github_webhook")
@app.route(route="github/webhook", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
def github_webhook(req: func.HttpRequest) -> func.HttpResponse:
    # Anonymous at the platform: the X-Hub-Signature-256 check is the authentication. It only queues.
    status, body = handlers.on_webhook(dict(req.headers), req.get_body())
    return _json(status, body)


# The webhook's queue, in the Functions host's own storage account (AzureWebJobsStorage, identity-based
# in Azure). The host retries a failing message and moves it to <queue>-poison (host.json).
@app.function_name("reconcile_queue")
@app.queue_trigger(arg_name="msg", queue_name="%SYNOSCD_QUEUE_NAME%", connection="AzureWebJobsStorage")
def reconcile_queue(msg: func.QueueMessage) -> None:
    handlers.on_queue_message(msg.get_body(), msg.dequeue_count or 1)


@app.function_name("health")
@app.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def health(req: func.HttpRequest) -> func.HttpResponse:
    status, body = handlers.on_health()
    return _json(status, body)


@app.function_name("health_details")
@app.route(route="health/details", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def health_details(req: func.HttpRequest) -> func.HttpResponse:
    status, body = handlers.on_health_details()
    return _json(status, body)


# The read-only dashboard and its JSON API: anonymous at the Functions level because App Service
# Authentication (Easy Auth, infra/modules/auth.bicep) signs users in in front of them; synoscd/ui/auth.py
# checks that it did. Imported lazily: loading the Function app pays nothing for Jinja2.
@app.function_name("dashboard")
@app.route(route="ui/{*path}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def dashboard(req: func.HttpRequest) -> func.HttpResponse:
    from synoscd.ui import http

    status, headers, body = http.ui(req.route_params.get("path") or "", req.params, req.headers, req.url)
    return func.HttpResponse(body, status_code=status, headers=headers)


@app.function_name("api_v1")
@app.route(route="v1/{*path}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def api_v1(req: func.HttpRequest) -> func.HttpResponse:
    from synoscd.ui import http

    status, headers, body = http.api(req.route_params.get("path") or "", req.params, req.headers, req.url)
    return func.HttpResponse(body, status_code=status, headers=headers)
