"""Rendering the dashboard's Vega-Lite specs to SVG, in a worker process.

``vl-convert-python`` (the maintained Vega and Vega-Lite JavaScript in an embedded engine: offline,
nothing shipped to the browser) holds the GIL for the whole conversion (40-130 ms a chart, measured;
about 2 s for the first), which would stall every request on the gateway's event loop, even from a
thread; so ``Renderer`` converts in a worker *process*, started on the first page and stopped after a
minute idle. The specs come from ``sophia.observe.dashboard_charts``.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sys
import time
from asyncio.subprocess import PIPE
from typing import Any

import orjson

from sophia.errors import SophiaError

log = logging.getLogger(__name__)
VL_VERSION = "5.20"  # the vl-convert bundle that renders the specs
MAX_REPLY = 64 * 1024 * 1024
_VEGA_BASE = 'xlink:href="https://vega.github.io/vega-datasets/'


# -- rendering ----------------------------------------------------------------------------------


def render_svgs(specs: list[dict[str, Any]]) -> list[tuple[str, float]]:
    """Each spec as SVG, with its render time in ms (runs in the worker process).

    No data is loaded from anywhere (``allowed_base_urls=[]``): every spec carries its values."""
    import vl_convert

    out = []
    for spec in specs:
        started = time.perf_counter()
        svg = vl_convert.vegalite_to_svg(spec, vl_version=VL_VERSION, allowed_base_urls=[])
        out.append((svg, (time.perf_counter() - started) * 1000))
    return out


_ID = re.compile(r'\bid="([^"]+)"')


def embeddable(svg: str, prefix: str) -> str:
    """An SVG ready to sit inline beside others: its ids (clip paths, gradients) made unique with
    ``prefix`` and its links rooted at /dashboard/ (Vega roots relative links at its own loader's)."""
    ids = set(_ID.findall(svg))
    for name in ids:
        svg = svg.replace(f'id="{name}"', f'id="{prefix}-{name}"').replace(
            f"url(#{name})", f"url(#{prefix}-{name})"
        )
        svg = svg.replace(f'href="#{name}"', f'href="#{prefix}-{name}"')
    return svg.replace(_VEGA_BASE, 'xlink:href="/dashboard/')


class Renderer:
    """SVGs from specs in a worker process (``python -m sophia.observe.dashboard_render``: one JSON line
    of specs in, one of SVGs out), started on first use, again if it died, stopped after ``idle`` seconds
    unused. A plain child process, not ``multiprocessing``: nothing of the parent's ``__main__`` runs in it."""

    def __init__(self, idle: float = 60.0) -> None:
        self.idle = idle
        self._proc: asyncio.subprocess.Process | None = None
        self._lock = asyncio.Lock()
        self._reaper: asyncio.TimerHandle | None = None  # stops the worker once idle
        self._closing: set[asyncio.Task[None]] = set()

    @property
    def pid(self) -> int | None:
        """The worker's process id while it runs."""
        return self._proc.pid if self._proc is not None and self._proc.returncode is None else None

    async def render(self, specs: list[dict[str, Any]]) -> list[tuple[str, float]]:
        async with self._lock:  # one batch at a time: the worker draws one chart at a time anyway
            if self._reaper is not None:
                self._reaper.cancel()
            try:
                try:
                    return await self._ask(specs)
                except _WorkerGone:  # killed, out of memory, crashed: a new one, once
                    log.warning("the chart renderer's worker process ended; starting another")
                    await self._stop()
                    return await self._ask(specs)
            finally:
                loop = asyncio.get_running_loop()
                self._reaper = loop.call_later(self.idle, self._reap)

    async def _ask(self, specs: list[dict[str, Any]]) -> list[tuple[str, float]]:
        proc = self._proc
        if proc is None or proc.returncode is not None:
            proc = self._proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", __name__, stdin=PIPE, stdout=PIPE, limit=MAX_REPLY
            )
        assert proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write(orjson.dumps(specs) + b"\n")
            await proc.stdin.drain()
            line = await proc.stdout.readline()
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise _WorkerGone from exc
        if not line:
            raise _WorkerGone
        reply = orjson.loads(line)
        if isinstance(reply, dict):
            raise SophiaError(f"a dashboard chart could not be drawn: {reply['error']}")
        return [(str(svg), float(ms)) for svg, ms in reply]

    def _reap(self) -> None:
        self._reaper = None
        if not self._lock.locked():
            task = asyncio.get_running_loop().create_task(self.aclose())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def _stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.returncode is None:
            assert proc.stdin is not None
            proc.stdin.close()  # the worker ends at the end of its input
            try:
                async with asyncio.timeout(5):
                    await proc.wait()
            except TimeoutError:
                proc.kill()
                await proc.wait()
        else:
            await proc.wait()

    async def aclose(self) -> None:
        """Stop the worker (a later render starts another)."""
        if self._reaper is not None:
            self._reaper.cancel()
            self._reaper = None
        await self._stop()


class _WorkerGone(Exception):
    """The worker process ended before answering."""


def _serve() -> None:
    """The worker: a JSON array of specs per input line, a JSON array of [svg, ms] per output line
    (``{"error": …}`` when a spec cannot be drawn), until its input ends."""
    out = sys.stdout.buffer
    for line in sys.stdin.buffer:
        try:
            reply: Any = render_svgs(orjson.loads(line))
        except Exception as exc:  # noqa: BLE001 - a bad spec is reported to the caller, the worker goes on
            reply = {"error": f"{type(exc).__name__}: {exc}"[:500]}
        out.write(orjson.dumps(reply) + b"\n")
        out.flush()


if __name__ == "__main__":
    _serve()
