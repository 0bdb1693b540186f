"""Load generation with wrk: one thread, N keep-alive connections, a fixed chat request.

wrk's text report rounds latencies to two decimals in a unit it picks (us, ms or s); its
Lua `done` hook gives the same figures unrounded, in microseconds, with the error counts.
The script prints them as one JSON line after a marker, and that line is what we read.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

RESULT_MARKER = "WRK_RESULT "
WRK_THREADS = 1
WRK_REQUEST_TIMEOUT = "5s"  # Longer than any gateway's p99 here: a slow answer is not an error.
WRK_EXIT_GRACE_SECONDS = 30.0
MICROSECONDS_PER_SECOND = 1_000_000
PROMPT = "hello"

WRK_SCRIPT = """\
wrk.method = "POST"
wrk.body = {body}
{headers}

done = function(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    '{marker}{{"requests": %d, "duration_us": %d, "p50_us": %.1f, "p99_us": %.1f, '
    .. '"non_2xx": %d, "connect_errors": %d, "read_errors": %d, "write_errors": %d, "timeouts": %d}}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    errors.status, errors.connect, errors.read, errors.write, errors.timeout))
end
"""


@dataclass(frozen=True)
class WrkResult:
    requests: int
    duration_us: int
    p50_us: float
    p99_us: float
    non_2xx: int
    connect_errors: int
    read_errors: int
    write_errors: int
    timeouts: int

    @property
    def requests_per_second(self) -> float:
        return self.requests * MICROSECONDS_PER_SECOND / self.duration_us

    @property
    def errors(self) -> int:
        """Failed requests of any kind: a run with errors measures something else than proxying."""
        return self.non_2xx + self.connect_errors + self.read_errors + self.write_errors + self.timeouts

    def as_dict(self) -> dict[str, float | int]:
        return {**asdict(self), "requests_per_second": self.requests_per_second, "errors": self.errors}


def chat_request_body(model: str) -> str:
    return json.dumps({"model": model, "messages": [{"role": "user", "content": PROMPT}]})


def write_script(path: Path, model: str, headers: dict[str, str]) -> Path:
    """A wrk Lua script that posts the chat request with these headers and reports as JSON."""
    all_headers = {"Content-Type": "application/json", **headers}
    header_lines = "\n".join(
        f"wrk.headers[{_lua_string(name)}] = {_lua_string(value)}" for name, value in all_headers.items()
    )
    path.write_text(
        WRK_SCRIPT.format(
            body=_lua_string(chat_request_body(model)), headers=header_lines, marker=RESULT_MARKER
        )
    )
    return path


def run_wrk(url: str, script: Path, connections: int, duration_seconds: int) -> WrkResult:
    command = ["wrk", f"-t{WRK_THREADS}", f"-c{connections}", f"-d{duration_seconds}s"]
    command += ["--latency", f"--timeout={WRK_REQUEST_TIMEOUT}", "-s", str(script), url]
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=duration_seconds + WRK_EXIT_GRACE_SECONDS,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"wrk failed (exit {done.returncode}): {done.stderr.strip() or done.stdout.strip()}"
        )
    return parse_result(done.stdout)


def parse_result(output: str) -> WrkResult:
    for line in output.splitlines():
        if line.startswith(RESULT_MARKER):
            return WrkResult(**json.loads(line[len(RESULT_MARKER) :]))
    raise RuntimeError(f"wrk printed no {RESULT_MARKER.strip()} line:\n{output}")


def _lua_string(value: str) -> str:
    """A double-quoted Lua string literal (ASCII only: Lua 5.1 has no unicode escapes)."""
    if not value.isascii() or any(ord(char) < ord(" ") for char in value):
        raise ValueError(f"not a plain ASCII header or body: {value!r}")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
