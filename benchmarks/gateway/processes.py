"""Starting, watching and stopping the benchmark's server processes.

Every server runs in its own session (process group), so stopping it also stops the
workers and helpers it forked. Nothing here ever signals a process it did not start.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

LOOPBACK = "127.0.0.1"
GRACEFUL_STOP_SECONDS = 10.0
HEALTH_POLL_SECONDS = 0.2
HEALTH_REQUEST_TIMEOUT_SECONDS = 2.0
LOG_TAIL_LINES = 30
KIB_PER_MIB = 1024


class StartError(RuntimeError):
    """A server did not start, or did not answer as the benchmark needs."""


def free_port() -> int:
    """A TCP port on the loopback address that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int) -> bool:
    """True when nothing listens on the port, on any interface (Portkey binds every interface).

    SO_REUSEADDR lets the bind succeed over connections left in TIME_WAIT, which are not
    a server still running; a listening socket still makes it fail.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("", port))
        except OSError:
            return False
    return True


@dataclass
class Service:
    """One server process that the benchmark started, with its log file."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    ports: list[int] = field(default_factory=list)

    @classmethod
    def start(
        cls, name: str, command: list[str], log_path: Path, env: dict[str, str], cwd: Path | None = None
    ) -> Service:
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=cwd,
                start_new_session=True,
            )
        return cls(name=name, process=process, log_path=log_path)

    def stop(self) -> None:
        """SIGTERM the whole process group, then SIGKILL what is left after a grace period."""
        group = self.process.pid
        _signal_group(group, signal.SIGTERM)
        try:
            self.process.wait(timeout=GRACEFUL_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            _signal_group(group, signal.SIGKILL)
            self.process.wait()
        # Children that outlived their parent still carry the group id.
        _signal_group(group, signal.SIGKILL)

    def log_tail(self) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError as error:
            return f"(no log: {error})"
        return "\n".join(lines[-LOG_TAIL_LINES:])

    def wait_until_healthy(self, url: str, timeout_seconds: float) -> None:
        """Poll `url` until it answers 2xx; fail early if the process exits."""
        deadline = time.monotonic() + timeout_seconds
        last_error = "no answer yet"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = self.log_tail()
                last = tail.splitlines()[-1] if tail else "no output"
                raise StartError(f"{self.name} exited with code {self.process.returncode}: {last}\n{tail}")
            try:
                with urllib.request.urlopen(url, timeout=HEALTH_REQUEST_TIMEOUT_SECONDS) as response:
                    if 200 <= response.status < 300:
                        return
                    last_error = f"HTTP {response.status}"
            except (urllib.error.URLError, OSError) as error:
                last_error = str(error)
            time.sleep(HEALTH_POLL_SECONDS)
        waited = f"after {timeout_seconds:.0f} s ({last_error})"
        raise StartError(f"{self.name} not healthy at {url} {waited}:\n{self.log_tail()}")

    def rss_mib(self) -> float:
        """Resident memory of the process and all its descendants, in MiB."""
        return sum(_rss_kib(pid) for pid in _process_tree(self.process.pid)) / KIB_PER_MIB


def _signal_group(group: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):  # The whole group has already exited.
        os.killpg(group, signum)


def _process_tree(root: int) -> list[int]:
    """`root` and every live descendant, found through the parent ids in /proc/<pid>/stat."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        parent = _parent_pid(entry)
        if parent is not None:
            children.setdefault(parent, []).append(int(entry.name))
    tree, pending = [], [root]
    while pending:
        pid = pending.pop()
        tree.append(pid)
        pending.extend(children.get(pid, []))
    return tree


def _parent_pid(proc_dir: Path) -> int | None:
    try:
        stat = (proc_dir / "stat").read_text()
    except OSError:
        return None  # The process exited while we looked.
    # The command name (field 2) is in parentheses and may contain spaces: split after it.
    fields_after_name = stat.rsplit(")", 1)[1].split()
    return int(fields_after_name[1])


def _rss_kib(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0  # Kernel threads and zombies have no VmRSS line.
