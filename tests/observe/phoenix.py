"""A real Arize Phoenix server for the tests: ``phoenix serve`` from its own venv, on loopback.

`make phoenix` builds ``.venv-phoenix`` (arize-phoenix is heavy and stays out of Sophia's venv);
without it ``PhoenixServer`` fails and says so, it never skips. ``PhoenixServer`` starts Phoenix with
SQLite in a folder of its own, waits until ``/readyz`` answers, and ends the process group on exit::

    with PhoenixServer() as phoenix:
        exporter = OTLPSpanExporter(endpoint=phoenix.http_endpoint)  # or the gRPC one at grpc_endpoint
        ...
        spans = phoenix.spans("my-project", wait_for=2)

How Phoenix files incoming spans: each OTLP ``ResourceSpans`` goes to the project named by its resource
attribute ``openinference.project.name`` (``PROJECT_ATTRIBUTE``), else to ``"default"``; over OTLP/HTTP an
``x-project-name`` header wins over both. The project is created on its first span.

What ``spans()`` returns is read back through Phoenix's public REST API, ``GET
/v1/projects/{project}/spans/otlpv1`` (operation ``spanSearch``; its sibling ``/spans`` moves
``openinference.span.kind`` out of the attributes). Phoenix stores attributes as one nested JSON
document (``{"llm": {"token_count": {"prompt": 12}}}``) and this endpoint flattens them back to dotted
keys, each value tagged with its OTLP type, so ints, floats, bools, strings and homogeneous arrays come
back as they were sent. What Phoenix changes at ingestion: from ``gen_ai.*`` it derives OpenInference
attributes the span lacks (``llm.model_name``, ``llm.token_count.total``, ``llm.finish_reason``,
``llm.invocation_parameters``, ...; one the span carries is never replaced); ``llm.token_count.*`` are
cast to int; a JSON string under ``metadata``, ``tool.parameters``, ``llm.prompt_template.variables`` or
``document.metadata`` is parsed and comes back as dotted keys (``metadata.k``). Not stored: resource
attributes other than the project name, the OTel span kind, links. Times are kept to the microsecond
(decoded through a float, so within 1 µs of what was sent).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections import deque
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx

REPO = Path(__file__).resolve().parents[2]
PHOENIX_VENV = REPO / ".venv-phoenix"
PHOENIX = PHOENIX_VENV / "bin" / "phoenix"
#: the resource attribute that names the Phoenix project a span is filed under
PROJECT_ATTRIBUTE = "openinference.project.name"
STARTUP_SECONDS = 120.0
STOP_SECONDS = 15.0
_STATUS = {0: "UNSET", 1: "OK", 2: "ERROR"}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class PhoenixServer:
    """``phoenix serve`` on 127.0.0.1 (HTTP UI/API and OTLP/HTTP on one port, OTLP/gRPC on another).

    ``workdir`` holds the SQLite database and the server's log; a temporary folder (removed on
    ``stop``) when not given. Phoenix binds its gRPC port on every interface (``[::]``, not
    configurable in 20.x); the port is checked free there before the start.
    """

    def __init__(self, workdir: Path | None = None, *, startup_timeout: float = STARTUP_SECONDS) -> None:
        self._own_workdir = workdir is None
        self.workdir = Path(tempfile.mkdtemp(prefix="phoenix-")) if workdir is None else workdir
        self.startup_timeout = startup_timeout
        self.http_port = 0
        self.grpc_port = 0
        #: seconds from spawning the process to its first ready answer
        self.startup_seconds = 0.0
        self._proc: subprocess.Popen[bytes] | None = None
        self._client = httpx.Client(timeout=10)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def http_endpoint(self) -> str:
        """The OTLP/HTTP traces URL (protobuf), for ``OTLPSpanExporter(endpoint=...)``."""
        return f"{self.base_url}/v1/traces"

    @property
    def grpc_endpoint(self) -> str:
        """The OTLP/gRPC address (plaintext), for the gRPC ``OTLPSpanExporter(endpoint=..., insecure=True)``."""
        return f"http://127.0.0.1:{self.grpc_port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "phoenix.log"

    def __enter__(self) -> PhoenixServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> PhoenixServer:
        """Start Phoenix and wait until it is ready; on failure nothing is left running."""
        try:
            if not os.access(PHOENIX, os.X_OK):
                raise RuntimeError(
                    f"{PHOENIX} is missing: run `make phoenix` to build .venv-phoenix "
                    "(arize-phoenix in its own venv) before the Phoenix tests"
                )
            self.workdir.mkdir(parents=True, exist_ok=True)
            for _ in range(3):  # a port taken between our check and Phoenix's bind: again, fresh ports
                try:
                    self._spawn_and_wait()
                    return self
                except _PortTaken:
                    continue
            raise RuntimeError(f"phoenix serve could not bind its ports three times:\n{self.log_tail()}")
        except BaseException:
            self.stop()
            raise

    def _spawn_and_wait(self) -> None:
        self.http_port, self.grpc_port = _free_ports()
        (self.workdir / "tmp").mkdir(exist_ok=True)
        env = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(("PHOENIX_", "OTEL_")) and name not in ("PYTHONPATH", "PYTHONHOME")
        }
        env.update(
            PHOENIX_HOST="127.0.0.1",
            PHOENIX_PORT=str(self.http_port),
            PHOENIX_GRPC_PORT=str(self.grpc_port),
            PHOENIX_WORKING_DIR=str(self.workdir),
            PHOENIX_SQL_DATABASE_URL=f"sqlite:///{self.workdir / 'phoenix.db'}",
            TMPDIR=str(self.workdir / "tmp"),  # its pid files, else under /tmp/.arize-phoenix
            # No phone-home: no telemetry pixels, web fonts or downloads, no assistant, MCP or sandboxes.
            PHOENIX_TELEMETRY_ENABLED="false",
            PHOENIX_ALLOW_EXTERNAL_RESOURCES="false",
            PHOENIX_DISABLE_AGENT_ASSISTANT="true",
            PHOENIX_ENABLE_MCP_SERVER="false",
            PHOENIX_ALLOWED_SANDBOX_PROVIDERS="NONE",
            PHOENIX_LOG_MIGRATIONS="false",
        )
        started = time.monotonic()
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                [str(PHOENIX), "serve"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                env=env,
                start_new_session=True,  # its own process group, ended whole by stop()
            )
        deadline = started + self.startup_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                self._end()
                tail = self.log_tail()
                if "bind" in tail.lower() or "address already in use" in tail.lower():
                    raise _PortTaken
                raise RuntimeError(f"phoenix serve exited before it was ready:\n{tail}")
            try:
                if self._client.get(f"{self.base_url}/readyz", timeout=1).status_code == 200:
                    self.startup_seconds = time.monotonic() - started
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self._end()
        raise RuntimeError(
            f"phoenix serve was not ready within {self.startup_timeout:.0f}s; its last lines:\n{self.log_tail()}"
        )

    def stop(self) -> None:
        """End Phoenix and remove the temporary folder (a given ``workdir`` is left as it is)."""
        self._end()
        self._client.close()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def _end(self) -> None:
        """End Phoenix's process group: SIGTERM, then SIGKILL after ``STOP_SECONDS``."""
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None:
                _signal_group(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(STOP_SECONDS)
                except subprocess.TimeoutExpired:
                    _signal_group(proc.pid, signal.SIGKILL)
                    proc.wait(STOP_SECONDS)
            _signal_group(proc.pid, signal.SIGKILL)  # anything it started that outlived it

    def log_tail(self, lines: int = 40) -> str:
        try:
            with self.log_path.open(encoding="utf-8", errors="replace") as log:
                return "".join(deque(log, maxlen=lines))
        except FileNotFoundError:
            return "(no log)"

    def spans(
        self, project: str = "default", *, wait_for: int = 0, timeout: float = 30
    ) -> list[dict[str, Any]]:
        """The spans Phoenix stored in ``project``, oldest start first, as plain dicts.

        Phoenix writes incoming spans in batches, so ``wait_for=n`` polls until at least ``n`` are
        there (``TimeoutError`` after ``timeout`` seconds). Each dict has ``name``, ``trace_id``,
        ``span_id``, ``parent_id`` (hex, ``None`` for a root), ``start_time``/``end_time`` (UTC
        datetimes), ``status_code`` (``UNSET``/``OK``/``ERROR``), ``status_message``, ``attributes``
        (flat, dotted keys, typed values) and ``events`` (``name``, ``time``, ``attributes``).
        """
        deadline = time.monotonic() + timeout
        while True:
            found = self._read_spans(project)
            if len(found) >= wait_for:
                return found
            if self._proc is None or self._proc.poll() is not None:
                raise RuntimeError(f"Phoenix is not running:\n{self.log_tail()}")
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"Phoenix holds {len(found)} span(s) in project {project!r} after {timeout}s, "
                    f"expected at least {wait_for}; its last lines:\n{self.log_tail()}"
                )
            time.sleep(0.1)

    def _read_spans(self, project: str) -> list[dict[str, Any]]:
        url = f"{self.base_url}/v1/projects/{quote(project, safe='')}/spans/otlpv1"
        raw: list[dict[str, Any]] = []
        params: dict[str, str | int] = {"limit": 1000}
        while True:
            response = self._client.get(url, params=params)
            if response.status_code == 404:  # the project is created with its first span
                return []
            response.raise_for_status()
            body = response.json()
            raw.extend(body["data"])
            if not body.get("next_cursor"):
                break
            params["cursor"] = body["next_cursor"]
        raw.reverse()  # newest first on the wire; stable sort below keeps arrival order on ties
        return sorted((_span(item) for item in raw), key=lambda span: span["start_time"])


class _PortTaken(Exception):
    """Phoenix could not bind a port we picked (taken in between)."""


def _free_ports() -> tuple[int, int]:
    """A free loopback port for HTTP and one free on every interface for gRPC (Phoenix binds ``[::]``)."""
    with socket.socket() as http:
        http.bind(("127.0.0.1", 0))
        try:
            grpc = socket.socket(socket.AF_INET6)
            grpc.bind(("::", 0))  # dual-stack: free on IPv4 and IPv6 alike
        except OSError:
            grpc = socket.socket()
            grpc.bind(("0.0.0.0", 0))
        with grpc:
            return int(http.getsockname()[1]), int(grpc.getsockname()[1])


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):  # the group is gone already
        os.killpg(pid, sig)


def _span(item: dict[str, Any]) -> dict[str, Any]:
    status = item.get("status") or {}
    return {
        "name": item["name"],
        "trace_id": item["trace_id"],
        "span_id": item["span_id"],
        "parent_id": item.get("parent_span_id"),
        "start_time": _time(item["start_time_unix_nano"]),
        "end_time": _time(item["end_time_unix_nano"]),
        "status_code": _STATUS[status.get("code") or 0],
        "status_message": status.get("message") or "",
        "attributes": _attributes(item.get("attributes")),
        "events": [
            {
                "name": event["name"],
                "time": _time(event.get("time_unix_nano")),
                "attributes": _attributes(event.get("attributes")),
            }
            for event in item.get("events") or []
        ],
    }


def _attributes(pairs: list[dict[str, Any]] | None) -> dict[str, Any]:
    return {pair["key"]: _value(pair["value"]) for pair in pairs or []}


def _value(value: dict[str, Any]) -> Any:
    """An OTLP ``AnyValue`` as Phoenix writes it in JSON (one field set) as a Python value."""
    if value.get("string_value") is not None:
        return value["string_value"]
    if value.get("bool_value") is not None:
        return bool(value["bool_value"])
    if value.get("int_value") is not None:
        return int(value["int_value"])
    if value.get("double_value") is not None:
        return float(value["double_value"])  # "inf", "-inf" and "nan" come as strings
    if value.get("array_value") is not None:
        return [_value(item) for item in value["array_value"].get("values") or []]
    if value.get("bytes_value") is not None:
        return bytes.fromhex(value["bytes_value"])
    return None


def _time(unix_nano: int | None) -> datetime | None:
    """Phoenix keeps microseconds and sends nanoseconds computed through a float: round to the µs."""
    if unix_nano is None:
        return None
    return _EPOCH + timedelta(microseconds=(int(unix_nano) + 500) // 1000)
