#!/usr/bin/env python3
"""Gateway speed benchmark: Sophia, LiteLLM proxy and Portkey's gateway, side by side.

All of them run with one worker process and proxy to the same nginx upstream, which
answers a fixed chat completion at once; nginx called directly is the floor. Sophia runs
twice: cache off (the pass-through) and with its defaults (the response cache on). wrk
loads each row - a target under one kind of traffic, a fixed body or varied bodies - in
turn (alternating within every round, the starting row rotating from round to round) at
each connection level, after a warm-up. The report gives medians over the rounds with their
ranges, requests/s as a ratio to Portkey's in the same round, the p50 latency each gateway
adds over nginx direct (and the cache over the pass-through), and Sophia's goals.

Run benchmarks/gateway/setup.sh first (nginx, wrk and the peers). See README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from load import TRAFFIC, Traffic, WrkResult, chat_request_body, run_wrk
from processes import StartError, port_is_free
from questions import DEFAULT_SEED, capacity
from report import (
    MICROSECONDS_PER_MILLISECOND,
    TELEMETRY,
    Measurement,
    answers_lines,
    before_after_table,
    goals_table,
    markdown_table,
    summarise,
)
from rows import Row, build_rows
from sophia_cache import prime_exact_hit, settle, warm_up
from targets import (
    BEFORE_TARGETS,
    OPT_IN_TARGETS,
    TARGETS,
    UPSTREAM_COMPLETION,
    Context,
    Target,
    start_upstream,
)

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
DEFAULT_PEERS_DIR = HERE.parent / ".peers"
DEFAULT_RESULTS_DIR = HERE / "results"
DEFAULT_SOPHIA_BIN = REPO / ".venv" / "bin" / "sophia"
SOPHIA_SOURCES = ("src", "pyproject.toml")  # what makes a revision "dirty" for the record

DEFAULT_ROUNDS = 3
DEFAULT_DURATION_SECONDS = 15
DEFAULT_WARMUP_SECONDS = 5
DEFAULT_CONNECTIONS = (1, 8)
PREFLIGHT_TIMEOUT_SECONDS = 10.0
SBIN_PATH = "/usr/sbin:/sbin"
EXIT_SIGNAL_BASE = 128  # A process ended by signal N exits with 128 + N, by convention.


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Quick check: run.py --rounds 1 --duration 3 --warmup 1 --output /tmp/bench.json",
    )
    parser.add_argument(
        "--rounds", type=int, default=DEFAULT_ROUNDS, help="rounds per level (default %(default)s)"
    )
    parser.add_argument(
        "--duration",
        type=int,
        default=DEFAULT_DURATION_SECONDS,
        help="seconds measured per row (default %(default)s)",
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=DEFAULT_WARMUP_SECONDS,
        help="seconds of unmeasured load before each (default %(default)s)",
    )
    parser.add_argument(
        "--connections",
        type=_int_list,
        default=list(DEFAULT_CONNECTIONS),
        help="comma-separated connection levels (default %(default)s)",
    )
    parser.add_argument(
        "--targets",
        type=_target_list,
        default=None,
        help=f"comma-separated targets, from {','.join(TARGETS)} (default: all; the *-before ones with --before)",
    )
    parser.add_argument(
        "--skip",
        type=_target_list,
        default=[],
        help="comma-separated targets to leave out, e.g. litellm (slow to start, a ninth of the load)",
    )
    parser.add_argument(
        "--traffic",
        type=_traffic_list,
        default=list(TRAFFIC),
        help="fixed (one body), varied (a new question per request) or both (default: fixed,varied)",
    )
    parser.add_argument(
        "--seed", type=int, default=DEFAULT_SEED, help="seed of the varied questions (default %(default)s)"
    )
    parser.add_argument(
        "--peers-dir", type=Path, default=DEFAULT_PEERS_DIR, help="where setup.sh installed the peers"
    )
    parser.add_argument(
        "--sophia-bin", type=Path, default=DEFAULT_SOPHIA_BIN, help="the sophia command to run"
    )
    parser.add_argument(
        "--before",
        metavar="REF",
        help="also measure Sophia at this git commit (sophia-before, sophia-cache-before), same run",
    )
    parser.add_argument("--output", type=Path, help="results JSON path (default: results/<date>.json)")
    parser.add_argument("--keep-workdir", action="store_true", help="keep the configs and server logs")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.duration < 1 or args.warmup < 0:
        parser.error("--rounds and --duration must be at least 1, --warmup at least 0")
    if args.targets is None:
        args.targets = [
            key for key in TARGETS if (args.before or key not in BEFORE_TARGETS) and key not in OPT_IN_TARGETS
        ]
    if not args.before and any(key in BEFORE_TARGETS for key in args.targets):
        parser.error(f"{', '.join(BEFORE_TARGETS)} need --before REF")
    args.targets = [key for key in args.targets if key not in args.skip]
    if not args.targets:
        parser.error("--skip leaves no target to measure")
    return args


def _int_list(text: str) -> list[int]:
    values = sorted({int(part) for part in text.split(",") if part.strip()})
    if not values or values[0] < 1:
        raise argparse.ArgumentTypeError("give positive integers, e.g. 1,8")
    return values


def _target_list(text: str) -> list[str]:
    return _choices(text, list(TARGETS), "target")


def _traffic_list(text: str) -> list[Traffic]:
    chosen = set(_choices(text, list(TRAFFIC), "traffic"))
    return [traffic for traffic in TRAFFIC if traffic in chosen]


def _choices(text: str, allowed: list[str], what: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [name for name in names if name not in allowed]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown {what}(s) {unknown}; choose from {','.join(allowed)}")
    return names


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    nginx_bin = _require_tools()
    _exit_cleanly_on_signals()
    workdir = Path(tempfile.mkdtemp(prefix="sophia-bench-"))
    ctx = Context(workdir=workdir, peers_dir=args.peers_dir, sophia_bin=args.sophia_bin, nginx_bin=nginx_bin)
    try:
        if args.before:
            ctx.before_src, ctx.before_ref = _checkout(args.before, workdir / "before"), args.before
        with _stopping_everything(ctx):
            start_upstream(ctx)
            targets, skipped = _start_targets(ctx, args.targets)
            if not targets:
                sys.exit("no target could be started: nothing to measure")
            idle_rss = {target.key: target.service.rss_mib() for target in targets}
            rows = build_rows(targets, args.traffic, workdir, args.seed)
            _say(f"Measuring {', '.join(row.key for row in rows)}: {_duration_estimate(args, len(rows))}.")
            measurements, questions_used = _measure(rows, args)
    finally:
        if ctx.before_src is not None:
            subprocess.run(
                ["git", "-C", str(REPO), "worktree", "remove", "--force", str(workdir / "before")],
                check=False,
            )
        if args.keep_workdir:
            _say(f"Configs and logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    labels = {row.key: row.label for row in rows}
    table = markdown_table(measurements, labels, args.connections)
    goals = goals_table(measurements, args.connections)
    before_after = before_after_table(measurements, labels, args.connections)
    telemetry = before_after_table(
        measurements, labels, args.connections, TELEMETRY, ("row (tracing on vs off)", "on", "off")
    )
    checks = answers_lines(measurements, labels)
    results = _results(args, targets, rows, skipped, idle_rss, measurements, table, questions_used)
    if before_after:
        results["before"] = {"ref": args.before, "table": before_after}
    if telemetry:
        results["telemetry"] = {"table": telemetry}
    path = _write_results(results, args.output)
    print(f"\n{table}\n")
    if goals:
        print(f"{goals}\n")
    if before_after:
        print(f"Now against --before {args.before} (same run, round by round):\n\n{before_after}\n")
    if telemetry:
        print(
            f"What telemetry costs: spans on (the default) against off (same run, round by round):\n\n{telemetry}\n"
        )
    if checks:
        print("What the cache answered (x-sophia-cache, counted by wrk over the measured loads):")
        print("\n".join(f"- {line}" for line in checks) + "\n")
    for key, reason in skipped.items():
        print(f"NOT MEASURED: {key}: {reason.splitlines()[0]}")
    print(f"Results: {path}")
    return 1 if skipped else 0


# --- setting up and tearing down ----------------------------------------------------------


def _checkout(ref: str, folder: Path) -> Path:
    """Sophia's source at ``ref`` in a detached git worktree; its ``src`` folder."""
    done = subprocess.run(
        ["git", "-C", str(REPO), "worktree", "add", "--detach", str(folder), ref],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        sys.exit(f"cannot check out {ref!r}: {done.stderr.strip()}")
    return folder / "src"


def _require_tools() -> str:
    """The nginx binary's path; exit with a hint when nginx or wrk is missing."""
    nginx = shutil.which("nginx") or shutil.which("nginx", path=SBIN_PATH)  # sbin is not on a user's PATH
    missing = [name for name, found in (("nginx", nginx), ("wrk", shutil.which("wrk"))) if not found]
    if nginx is None or missing:
        sys.exit(f"missing {', '.join(missing)}: run benchmarks/gateway/setup.sh first")
    return nginx


def _exit_cleanly_on_signals() -> None:
    """Turn SIGTERM and SIGHUP into SystemExit, so the servers are stopped on the way out."""

    def leave(signum: int, _frame: object) -> None:
        raise SystemExit(EXIT_SIGNAL_BASE + signum)

    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, leave)


@contextmanager
def _stopping_everything(ctx: Context) -> Iterator[None]:
    """Stop every server started in the block, in reverse order, and check their ports are free."""
    try:
        yield
    finally:
        for service in reversed(ctx.started):
            service.stop()
        still_bound = [port for service in ctx.started for port in service.ports if not port_is_free(port)]
        if still_bound:
            _say(f"WARNING: ports still bound after stopping: {still_bound}")


def _start_targets(ctx: Context, keys: list[str]) -> tuple[list[Target], dict[str, str]]:
    """Start each target and check it proxies one completion; leave out (and say) those that fail."""
    targets: list[Target] = []
    skipped: dict[str, str] = {}
    for key in keys:
        _say(f"Starting {key} ...")
        try:
            target = TARGETS[key].start(ctx)
            _check_completion(target)
            if target.cache_on:
                warm_up(target)
        except (StartError, OSError) as error:
            skipped[key] = str(error)
            _say(f"NOT MEASURED: {key}: {error}")
            continue
        targets.append(target)
    return targets, skipped


def _check_completion(target: Target) -> None:
    """One request through the target must come back as the upstream's completion."""
    request = urllib.request.Request(
        target.url,
        data=chat_request_body(target.model).encode(),
        headers={"Content-Type": "application/json", **target.headers},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=PREFLIGHT_TIMEOUT_SECONDS) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as error:
        detail = error.read().decode(errors="replace")[:500]
        raise StartError(f"{target.key} answered HTTP {error.code}: {detail}") from error
    except (urllib.error.URLError, OSError, ValueError) as error:
        raise StartError(f"{target.key} did not answer a chat completion: {error}") from error
    expected = UPSTREAM_COMPLETION["choices"][0]["message"]["content"]  # type: ignore[index]
    content = (body.get("choices") or [{}])[0].get("message", {}).get("content")
    if content != expected:
        raise StartError(f"{target.key} answered something else than the upstream's completion: {body}")


# --- measuring -----------------------------------------------------------------------------


def _measure(rows: list[Row], args: argparse.Namespace) -> tuple[list[Measurement], dict[str, int]]:
    """Every row in turn, level by level, round by round; and the question numbers each target used."""
    next_question = {row.target.key: 0 for row in rows}  # varied bodies never repeat on a target
    measurements: list[Measurement] = []
    for connections in args.connections:
        for round_index in range(args.rounds):
            for row in _rotated(rows, round_index):
                measurement = _measure_row(row, connections, round_index + 1, args, next_question)
                measurements.append(measurement)
                _say(_progress_line(measurement, args.rounds))
    for key, used in next_question.items():
        if used > capacity():
            _say(
                f"WARNING: {key} used {used:,} questions, more than the {capacity():,} there are: some repeated"
            )
    return measurements, next_question


def _measure_row(
    row: Row, connections: int, round_number: int, args: argparse.Namespace, next_question: dict[str, int]
) -> Measurement:
    """A warm-up and a measured load of one row; then, on a cache-on Sophia, wait for its stores."""
    target = row.target
    if row.primes_exact_hit and not prime_exact_hit(target):
        _say(f"WARNING: {row.key}: the fixed body is not an exact hit; see the counted answers")
    if args.warmup:
        _load(row, connections, args.warmup, next_question)
    wrk = _load(row, connections, args.duration, next_question)
    cache = None
    if target.cache_on:
        try:
            cache = settle(target).as_dict()
        except (OSError, ValueError) as error:  # ValueError: not the JSON it was
            _say(f"WARNING: {target.key}: could not read /admin/cache: {error}")
    return Measurement(row.key, connections, round_number, wrk, target.service.rss_mib(), cache)


def _load(row: Row, connections: int, seconds: int, next_question: dict[str, int]) -> WrkResult:
    key = row.target.key
    wrk = run_wrk(row.target.url, row.script, connections, seconds, row.timeout_seconds, next_question[key])
    next_question[key] += wrk.span
    return wrk


def _rotated(rows: list[Row], shift: int) -> list[Row]:
    """The rows in turn, starting one further each round, so no row always goes first."""
    shift %= len(rows)
    return rows[shift:] + rows[:shift]


def _progress_line(m: Measurement, rounds: int) -> str:
    p50_ms, p99_ms = m.wrk.p50_us / MICROSECONDS_PER_MILLISECOND, m.wrk.p99_us / MICROSECONDS_PER_MILLISECOND
    errors = f", {m.wrk.errors} ERRORS" if m.wrk.errors else ""
    answers = ", ".join(f"{n:,} {kind}" for kind, n in sorted(m.wrk.answers.items()))
    cache = f"  cache: {answers}; {m.cache['entries']:,} entries" if m.cache and answers else ""
    return (
        f"  @{m.connections} round {m.round}/{rounds} {m.row:19} {m.wrk.requests_per_second:>10,.0f} req/s"
        f"  p50 {p50_ms:7.3f} ms  p99 {p99_ms:7.3f} ms  RSS {m.rss_mib:6.1f} MiB{errors}{cache}"
    )


def _duration_estimate(args: argparse.Namespace, row_count: int) -> str:
    seconds = len(args.connections) * args.rounds * row_count * (args.duration + args.warmup)
    return f"about {seconds / 60:.1f} min of load"


# --- recording -------------------------------------------------------------------------------


def _results(
    args: argparse.Namespace,
    targets: list[Target],
    rows: list[Row],
    skipped: dict[str, str],
    idle_rss: dict[str, float],
    measurements: list[Measurement],
    table: str,
    questions_used: dict[str, int],
) -> dict[str, Any]:
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": _machine(),
        "settings": {
            "rounds": args.rounds,
            "duration_seconds": args.duration,
            "warmup_seconds": args.warmup,
            "connections": args.connections,
            "traffic": args.traffic,
            "seed": args.seed,
            "question_capacity": capacity(),
            "wrk_threads": 1,
            "workers_per_target": 1,
        },
        "targets": {
            t.key: {
                "label": t.label,
                "version": t.version,
                "cache_on": t.cache_on,
                "idle_rss_mib": round(idle_rss[t.key], 1),  # after start (and the cache's warm-up)
                "questions_used": questions_used.get(t.key, 0),  # warm-ups included
            }
            for t in targets
        },
        "rows": {
            row.key: {"label": row.label, "target": row.target.key, "traffic": row.traffic} for row in rows
        },
        "sophia_git": _git_revision(),
        "skipped": skipped,
        "measurements": [m.as_dict() for m in measurements],
        "summary": summarise(measurements, [row.key for row in rows], args.connections),
        "table": table,
    }


def _machine() -> dict[str, Any]:
    cpu_model = next(
        (
            line.split(":", 1)[1].strip()
            for line in _read_lines("/proc/cpuinfo")
            if line.startswith("model name")
        ),
        None,
    )
    memory = next(
        (line.split(":", 1)[1].strip() for line in _read_lines("/proc/meminfo") if "MemTotal" in line), None
    )
    return {
        "cores": os.cpu_count(),
        "cpu": cpu_model,
        "memory": memory,
        "kernel": platform.release(),
        "wrk": _first_line(["wrk", "-v"]),
    }


def _read_lines(path: str) -> list[str]:
    try:
        return Path(path).read_text().splitlines()
    except OSError:
        return []


def _first_line(command: list[str]) -> str | None:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    lines = (done.stdout or done.stderr).strip().splitlines()
    return lines[0] if lines else None


def _git_revision() -> str | None:
    """Sophia's commit, marked -dirty when its code differs from it (untracked files included)."""
    git = ["git", "-C", str(REPO)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False)
    if head.returncode != 0:
        return None
    changes = subprocess.run(
        [*git, "status", "--porcelain", "--", *SOPHIA_SOURCES], capture_output=True, text=True, check=False
    )
    return head.stdout.strip() + ("-dirty" if changes.stdout.strip() else "")


def _write_results(results: dict[str, Any], output: Path | None) -> Path:
    """Write to `output`, or to results/<date>.json without overwriting an earlier run of the day."""
    if output is None:
        stem = datetime.now().strftime("%Y-%m-%d")
        output = DEFAULT_RESULTS_DIR / f"{stem}.json"
        suffix = 2
        while output.exists():
            output = DEFAULT_RESULTS_DIR / f"{stem}-{suffix}.json"
            suffix += 1
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=2) + "\n")
    return output


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
