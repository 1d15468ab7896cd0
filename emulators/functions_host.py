"""A local stand-in for the Azure Functions host (Core Tools cannot be installed here).

It indexes `function_app.app` the way the host does — `app.get_functions()` and each function's raw
bindings — serves the HTTP functions on 127.0.0.1 under the route prefix of host.json, fires timer
functions on their NCRONTAB schedule (`%SETTING%` resolved from the environment), and runs queue
functions on the messages of their Storage Queue (Azurite). Like the host, a timer does not fire
again while its invocation is outstanding, and `past_due` is set when a tick comes late; a queue
message whose function fails is retried after host.json's `visibilityTimeout` and moved to
`<queue>-poison` after `maxDequeueCount` attempts; the queue is polled with a backoff up to
`maxPollingInterval`.

Queue triggers run in `--workers N` processes of their own (default 2), as a scaled-out Function
App runs them on several instances: each worker process polls the queue with host.json's
`batchSize + newBatchThreshold` messages in flight. A message being handled stays invisible for
MESSAGE_LEASE seconds, renewed while its function runs (the Azure host does the same with ten
minutes): a worker killed mid-function (SIGKILL) stops renewing, the message becomes visible again
and another worker retries it, its dequeue count one higher. A worker that dies is started again, as
the platform replaces an instance. `--workers 0` runs the queue triggers in the host's own process.

A queue trigger's `connection` names a setting holding a connection string, as with Core Tools; for
`AzureWebJobsStorage` the local stack's SYNOSCD_STATE_STORE (Azurite) stands in when it is unset.

    python -m emulators.functions_host [--env-file PATH] [--port 7071] [--function-key KEY] [--workers N]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from emulators.children import DIE_WITH_PARENT
from emulators.httpbase import LoopbackHandler

ROOT = Path(__file__).resolve().parent.parent
# Seconds a message being handled stays invisible, renewed every third of it while its function runs
# (tests that kill a worker shorten it through FUNCTIONS_HOST_MESSAGE_LEASE).
MESSAGE_LEASE = float(os.environ.get("FUNCTIONS_HOST_MESSAGE_LEASE", "30"))


# -- NCRONTAB ({second} {minute} {hour} {day} {month} {day-of-week}) ---------------------------------

_RANGES = [(0, 59), (0, 59), (0, 23), (1, 31), (1, 12), (0, 6)]


def _field(text: str, low: int, high: int) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        step = 1
        if "/" in part:
            part, step_text = part.split("/", 1)
            step = int(step_text)
        if part == "*":
            start, end = low, high
        elif "-" in part:
            a, b = part.split("-", 1)
            start, end = int(a), int(b)
        else:
            start = end = int(part)
            if step != 1:
                end = high
        if not (low <= start <= high and low <= end <= high) or step < 1:
            raise ValueError(f"{text!r} is outside {low}-{high}")
        values.update(range(start, end + 1, step))
    return frozenset(values)


@dataclass(frozen=True)
class Schedule:
    fields: tuple[frozenset[int], ...]

    @classmethod
    def parse(cls, expr: str) -> Schedule:
        parts = expr.split()
        if len(parts) != 6:
            raise ValueError(f"NCRONTAB {expr!r} needs 6 fields: second minute hour day month day-of-week")
        return cls(tuple(_field(p, lo, hi) for p, (lo, hi) in zip(parts, _RANGES, strict=True)))

    def matches(self, t: dt.datetime) -> bool:
        sec, minute, hour, day, month, dow = self.fields
        weekday = (t.weekday() + 1) % 7  # Python: Monday=0; NCRONTAB: Sunday=0
        return (
            t.second in sec
            and t.minute in minute
            and t.hour in hour
            and t.day in day
            and t.month in month
            and weekday in dow
        )

    def next_after(self, t: dt.datetime) -> dt.datetime:
        candidate = t.replace(microsecond=0) + dt.timedelta(seconds=1)
        for _ in range(8 * 24 * 3600):
            if self.matches(candidate):
                return candidate
            candidate += dt.timedelta(seconds=1)
        raise ValueError("schedule never fires within 8 days")


def resolve_setting(value: str) -> str:
    """`%NAME%` is an app setting, as in function.json."""
    m = re.fullmatch(r"%([A-Za-z0-9_]+)%", value)
    if not m:
        return value
    if m.group(1) not in os.environ:
        raise KeyError(f"app setting {m.group(1)} (used as {value}) is not set")
    return os.environ[m.group(1)]


# -- the host --------------------------------------------------------------------------------------------


@dataclass
class HttpFunction:
    name: str
    pattern: re.Pattern[str]
    methods: frozenset[str]
    auth_level: str
    fn: Callable[..., Any]


@dataclass
class QueueFunction:
    name: str
    queue: str
    connection: str
    fn: Callable[..., Any]
    invocations: int = 0
    poisoned: int = 0


@dataclass(frozen=True)
class QueueOptions:
    """host.json `extensions.queues`, with the host's defaults."""

    max_polling_interval: float = 60.0
    visibility_timeout: float = 0.0
    max_dequeue_count: int = 5
    base64: bool = True
    batch_size: int = 16
    new_batch_threshold: int = 8

    @classmethod
    def from_host_json(cls, doc: dict[str, Any]) -> QueueOptions:
        queues = doc.get("extensions", {}).get("queues", {})
        batch = int(queues.get("batchSize", 16))
        return cls(
            timespan(queues.get("maxPollingInterval", "00:01:00")),
            timespan(queues.get("visibilityTimeout", "00:00:00")),
            int(queues.get("maxDequeueCount", 5)),
            str(queues.get("messageEncoding", "base64")).lower() == "base64",
            batch,
            int(queues.get("newBatchThreshold", batch // 2)),
        )

    @property
    def concurrency(self) -> int:
        """Messages one instance handles at once: the host fetches a new batch when what it holds
        drops to newBatchThreshold, so at most batchSize + newBatchThreshold are in flight."""
        return max(1, self.batch_size + self.new_batch_threshold)


def timespan(text: str) -> float:
    """host.json TimeSpan `[d.]hh:mm:ss[.fff]` in seconds."""
    hours, minutes, seconds = text.split(":")
    days, _, hours = hours.rpartition(".")
    return (int(days or 0) * 24 + int(hours)) * 3600 + int(minutes) * 60 + float(seconds)


def queue_connection(name: str) -> str:
    """The connection string a queue trigger's `connection` setting names."""
    value = os.environ.get(name) or os.environ.get(f"{name}__connectionString")
    if not value and name == "AzureWebJobsStorage":
        value = os.environ.get("SYNOSCD_STATE_STORE")
    if not value or value.startswith(("http://", "https://")):
        raise KeyError(
            f"queue connection {name}: set {name} to a storage connection string (Azurite locally)"
        )
    return value


@dataclass
class TimerFunction:
    name: str
    schedule: Schedule
    fn: Callable[..., Any]
    invocations: int = 0
    past_due: int = 0


def _route_regex(prefix: str, route: str) -> re.Pattern[str]:
    # A catch-all `{*rest}` matches the rest of the path, empty included (ASP.NET routing, as the host).
    body = re.sub(r"/?\{\*(\w+)\}", r"(?:/(?P<\1>.*))?", route.strip("/"))
    body = re.sub(r"\{(\w+)(?::[^}]*)?\}", r"(?P<\1>[^/]+)", body)
    return re.compile("^/" + "/".join(p for p in (prefix.strip("/"), body) if p) + "/?$", re.IGNORECASE)


class FunctionsHost:
    def __init__(
        self,
        module: str = "function_app",
        port: int = 0,
        function_key: str | None = None,
        host_json: dict[str, Any] | None = None,
        workers: int = 0,
        serve_http: bool = True,
    ) -> None:
        host_json = host_json if host_json is not None else json.loads((ROOT / "host.json").read_text())
        self.module = module
        self.workers = workers  # queue-trigger processes; 0: queue triggers run in this process
        self.serve_http = serve_http
        self._worker_procs: list[subprocess.Popen[bytes]] = []
        self._watcher: threading.Thread | None = None
        self.restarts = 0
        self.prefix = host_json.get("extensions", {}).get("http", {}).get("routePrefix", "api")
        self.queue_options = QueueOptions.from_host_json(host_json)
        self.function_key = function_key
        self.app = importlib.import_module(module).app
        self.http: list[HttpFunction] = []
        self.timers: list[TimerFunction] = []
        self.queues: list[QueueFunction] = []
        self._index()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.server = _Server(("127.0.0.1", port), self)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.errors: list[str] = []

    def _index(self) -> None:
        for function in self.app.get_functions():
            bindings = [json.loads(b) for b in function.get_raw_bindings()]
            trigger = next(b for b in bindings if b["type"].endswith("Trigger"))
            name, fn = function.get_function_name(), function.get_user_function()
            if trigger["type"] == "httpTrigger":
                self.http.append(
                    HttpFunction(
                        name,
                        _route_regex(self.prefix, trigger.get("route") or name),
                        frozenset(m.upper() for m in trigger.get("methods") or ["GET", "POST"]),
                        str(trigger.get("authLevel", "FUNCTION")).upper(),
                        fn,
                    )
                )
            elif trigger["type"] == "timerTrigger":
                self.timers.append(
                    TimerFunction(name, Schedule.parse(resolve_setting(trigger["schedule"])), fn)
                )
            elif trigger["type"] == "queueTrigger":
                connection = trigger.get("connection") or "AzureWebJobsStorage"
                queue_connection(connection)  # fail at start, as the host does, when it is missing
                self.queues.append(QueueFunction(name, resolve_setting(trigger["queueName"]), connection, fn))
            else:
                raise ValueError(f"{name}: trigger {trigger['type']} is not supported by the local host")

    def start(self) -> FunctionsHost:
        if self.serve_http:
            serve = threading.Thread(target=self.server.serve_forever, name="functions-http", daemon=True)
            serve.start()
            self._threads.append(serve)
            for timer in self.timers:
                th = threading.Thread(
                    target=self._timer_loop, args=(timer,), name=f"timer-{timer.name}", daemon=True
                )
                th.start()
                self._threads.append(th)
        if self.workers and self.queues:
            self._worker_procs = [self._spawn_worker(i) for i in range(self.workers)]
            self._watcher = threading.Thread(target=self._watch_workers, name="queue-workers", daemon=True)
            self._watcher.start()
            self._threads.append(self._watcher)
            return self
        for queue in self.queues:
            for slot in range(self.queue_options.concurrency):
                th = threading.Thread(
                    target=self._queue_loop, args=(queue,), name=f"queue-{queue.name}-{slot}", daemon=True
                )
                th.start()
                self._threads.append(th)
        return self

    def _spawn_worker(self, index: int) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "emulators.functions_host", "--queue-worker", "--module", self.module],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            preexec_fn=DIE_WITH_PARENT,  # a host killed by SIGKILL takes its workers with it
        )
        print(f"queue worker {index} pid {proc.pid}", flush=True)
        return proc

    def _watch_workers(self) -> None:
        """A worker that dies (a crash, SIGKILL) is started again, as the platform replaces an instance."""
        while not self._stop.wait(0.5):
            for i, proc in enumerate(self._worker_procs):
                if proc.poll() is not None and not self._stop.is_set():
                    self.errors.append(f"queue worker {i} (pid {proc.pid}) exited with {proc.returncode}")
                    self.restarts += 1
                    self._worker_procs[i] = self._spawn_worker(i)

    @property
    def worker_pids(self) -> list[int]:
        return [p.pid for p in self._worker_procs]

    def stop(self) -> None:
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(timeout=5)  # it may be starting a worker again: let it finish first
        for proc in self._worker_procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self._worker_procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        if self.serve_http:
            self.server.shutdown()
        self.server.server_close()
        for th in self._threads:
            th.join(timeout=30)

    def _timer_loop(self, timer: TimerFunction) -> None:
        import azure.functions.timer as timer_types

        next_at = timer.schedule.next_after(dt.datetime.now())
        while not self._stop.is_set():
            wait = (next_at - dt.datetime.now()).total_seconds()
            if wait > 0 and self._stop.wait(wait):
                return
            late = (dt.datetime.now() - next_at).total_seconds() > 1.0
            timer.past_due += int(late)
            try:
                timer.fn(timer_types.TimerRequest(past_due=late))
            except Exception as exc:  # the host logs a failed invocation and keeps the schedule
                self.errors.append(f"{timer.name}: {type(exc).__name__}: {exc}")
            timer.invocations += 1
            # Not again while the invocation was outstanding: the next slot after it finished.
            next_at = timer.schedule.next_after(max(next_at, dt.datetime.now() - dt.timedelta(seconds=1)))

    def _queue_clients(self, queue: QueueFunction) -> tuple[Any, Any]:
        from azure.core.exceptions import ResourceExistsError
        from azure.storage.queue import QueueClient, TextBase64DecodePolicy, TextBase64EncodePolicy

        coding: dict[str, Any] = (
            {
                "message_encode_policy": TextBase64EncodePolicy(),
                "message_decode_policy": TextBase64DecodePolicy(),
            }
            if self.queue_options.base64
            else {}
        )
        conn = queue_connection(queue.connection)
        clients = []
        for name in (queue.queue, f"{queue.queue}-poison"):
            client = QueueClient.from_connection_string(conn, name, **coding)
            with contextlib.suppress(ResourceExistsError):
                client.create_queue()
            clients.append(client)
        return clients[0], clients[1]

    def _queue_loop(self, queue: QueueFunction) -> None:
        import azure.functions.queue as queue_types

        options = self.queue_options
        try:
            source, poison = self._queue_clients(queue)
        except Exception as exc:
            self.errors.append(f"{queue.name}: {type(exc).__name__}: {exc}")
            return
        delay = 0.1
        while not self._stop.is_set():
            try:
                # Invisible while the function runs; renewed below, so a dead worker's comes back.
                message = source.receive_message(visibility_timeout=int(MESSAGE_LEASE))
            except Exception as exc:  # storage down: poll again later, as the host does
                self.errors.append(f"{queue.name}: {type(exc).__name__}: {exc}")
                message = None
            if message is None:
                if self._stop.wait(delay):
                    return
                delay = min(delay * 2, options.max_polling_interval)
                continue
            delay = 0.1
            renewal = _Renewal(source, message)
            try:
                queue.fn(
                    queue_types.QueueMessage(
                        id=message.id,
                        body=message.content,
                        dequeue_count=message.dequeue_count,
                        pop_receipt=message.pop_receipt,
                    )
                )
                source.delete_message(renewal.stop())
            except Exception as exc:
                self.errors.append(f"{queue.name}: {type(exc).__name__}: {exc}")
                self._failed(queue, source, poison, renewal.stop())
            queue.invocations += 1

    def _failed(self, queue: QueueFunction, source: Any, poison: Any, message: Any) -> None:
        with contextlib.suppress(Exception):
            if (message.dequeue_count or 1) >= self.queue_options.max_dequeue_count:
                poison.send_message(message.content)
                source.delete_message(message)
                queue.poisoned += 1
            else:  # visible again after visibilityTimeout: the next attempt
                source.update_message(message, visibility_timeout=int(self.queue_options.visibility_timeout))

    def dispatch(
        self, method: str, raw_path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        import azure.functions as func

        parts = urlsplit(raw_path)
        params = dict(parse_qsl(parts.query))
        for function in self.http:
            m = function.pattern.match(parts.path)
            if not m:
                continue
            if method not in function.methods:
                return 405, {}, b""
            if function.auth_level != "ANONYMOUS":
                key = headers.get("x-functions-key") or params.get("code")
                if not self.function_key or key != self.function_key:
                    return 401, {}, b""
            req = func.HttpRequest(
                method,
                f"{self.url}{raw_path}",
                headers=headers,
                params=params,
                route_params=m.groupdict(),
                body=body,
            )
            try:
                resp = function.fn(req)
            except Exception as exc:
                self.errors.append(f"{function.name}: {type(exc).__name__}: {exc}")
                return 500, {"Content-Type": "text/plain"}, b"function failed"
            out_headers = dict(resp.headers)
            if resp.mimetype:
                out_headers.setdefault("Content-Type", resp.mimetype)
            return resp.status_code, out_headers, resp.get_body() or b""
        return 404, {}, b""


class _Renewal:
    """Keeps a message invisible while its function runs (every third of MESSAGE_LEASE); `stop`
    returns the message with its latest pop receipt, for the delete or the retry that follows."""

    def __init__(self, queue: Any, message: Any) -> None:
        self.queue = queue
        self.message = message
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="message-renewal", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._done.wait(MESSAGE_LEASE / 3):
            with self._lock:
                if self._done.is_set():
                    return
                with contextlib.suppress(Exception):
                    updated = self.queue.update_message(self.message, visibility_timeout=int(MESSAGE_LEASE))
                    self.message.pop_receipt = updated.pop_receipt
                    self.message.next_visible_on = updated.next_visible_on

    def stop(self) -> Any:
        with self._lock:
            self._done.set()
        return self.message


class _Handler(LoopbackHandler):
    server: _Server

    def _handle(self) -> None:
        body = self.read_body()
        headers = {k.lower(): v for k, v in self.headers.items()}
        status, out_headers, payload = self.server.host.dispatch(self.command, self.path, headers, body)
        self.send_response(status)
        for k, v in out_headers.items():
            if k.lower() != "content-length":
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, addr: tuple[str, int], host: FunctionsHost) -> None:
        super().__init__(addr, _Handler)
        self.host = host


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m emulators.functions_host",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--env-file", type=Path, help="an environment file written by `python -m emulators up`"
    )
    parser.add_argument("--port", type=int, default=7071)
    parser.add_argument(
        "--function-key", help="key of the functions whose auth level is not anonymous (default: none open)"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="processes running the queue triggers, like instances of a scaled-out app (0: in this one)",
    )
    parser.add_argument("--queue-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--module", default="function_app", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.env_file:
        from emulators.launcher import read_env_file

        os.environ.update(read_env_file(args.env_file))
    os.environ.setdefault("SYNOSCD_TIMER_SCHEDULE", "0 */1 * * * *")
    os.environ.setdefault("SYNOSCD_QUEUE_NAME", "synoscd-passes")
    os.environ.setdefault("SYNOSCD_UI_AUTH", "loopback")  # no Easy Auth here: the dashboard serves 127.0.0.1
    sys.path.insert(0, str(ROOT))
    if args.queue_worker:  # one worker process: the queue triggers only, until told to stop
        worker = FunctionsHost(module=args.module, serve_http=False).start()
        _until_signalled()
        worker.stop()
        return 0
    host = FunctionsHost(
        module=args.module, port=args.port, function_key=args.function_key, workers=args.workers
    ).start()
    print(
        f"functions host on {host.url}: "
        + ", ".join(
            [f"{f.name} {sorted(f.methods)} /{f.pattern.pattern}" for f in host.http]
            + [t.name for t in host.timers]
            + [f"{q.name} (queue {q.queue})" for q in host.queues]
        ),
        flush=True,
    )
    _until_signalled()
    host.stop()
    return 0


def _until_signalled() -> None:
    """Wait for SIGTERM or SIGINT (the launcher's stop, or Ctrl-C)."""
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    done.wait()


if __name__ == "__main__":
    sys.exit(main())
