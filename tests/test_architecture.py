"""The rooms of src/sophia import downward only: the contracts in pyproject.toml, run by import-linter."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")


def lint(cwd: Path, pythonpath: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {"PATH": str(LINT.parent), "HOME": str(cwd)}
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    return subprocess.run(
        [str(LINT), "--no-cache", "pyproject.toml"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_every_contract_is_kept() -> None:
    done = lint(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "BROKEN" not in done.stdout and done.stdout.count("KEPT") >= 4


def _no_model_data(folder: str, names: list[str]) -> set[str]:
    """Leave out bundled model files (the router's data folder, vectors): imports are what is linted."""
    skip = {n for n in names if n.endswith(".npz")}
    if Path(folder).name == "router" and "data" in names:
        skip.add("data")
    return skip


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        # the accounts reaching up into the gateway: what issue 21 removed
        ("accounts/keys.py", "import sophia.gateway.engine", "Rooms import downward only"),
        # the settings importing a room's section from the room
        ("settings/__init__.py", "import sophia.cache.cache", "Rooms import downward only"),
        # the edge room starting an MCP server
        ("gateway/app.py", "import sophia.mcp.http", "Rooms import downward only"),
        # the MCP base importing a server package
        ("mcp/server.py", "import sophia.mcp.ai", "The MCP base knows no server"),
        # runtime cache code importing the offline training
        ("cache/cache.py", "import sophia.cache.training.train", "never imports its offline training"),
        # a cycle inside a room (tools registering themselves through a bottom-of-file import)
        ("mcp/ai/calls.py", "import sophia.mcp.ai.catalog", "No import cycles"),
    ],
)
def test_a_new_upward_import_breaks_a_contract(tmp_path: Path, module: str, line: str, contract: str) -> None:
    """The contracts are not vacuous: one forbidden import added to a copy of the package is reported."""
    shutil.copytree(ROOT / "src" / "sophia", tmp_path / "sophia", ignore=_no_model_data)
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / "sophia" / module
    target.write_text(target.read_text(encoding="utf-8") + f"\n{line}  # noqa\n", encoding="utf-8")
    done = lint(tmp_path, pythonpath=tmp_path)
    assert done.returncode != 0, done.stdout
    broken = done.stdout.split("Broken contracts", 1)[-1]
    assert contract in broken, done.stdout
