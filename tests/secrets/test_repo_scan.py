"""`make test` scans the repository: no credential in code, docs, tests or benchmarks (the scanner's own
labelled set and its tests are the one exception: they are made of fake keys on purpose)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sophia.secrets.scan import scan_paths

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ["src", "docs", "tests", "benchmarks", "README.md", "Makefile", "pyproject.toml", ".ci"]
OWN_FAKES = ["secrets/labelled.py", "secrets/test_scan.py"]


def test_the_repository_holds_no_credentials() -> None:
    findings = scan_paths([ROOT / name for name in SCANNED if (ROOT / name).exists()], exclude=OWN_FAKES)
    assert [f"{f.path}:{f.line}: {f.kind} {f.preview}" for f in findings] == []


def test_the_cli_reports_a_planted_key_without_showing_it(tmp_path: Path) -> None:
    planted = "sk-proj-" + "Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zAb7cDe0fGh3iJk6lMn9oPq2rSt5uVw8xYz1"
    (tmp_path / "app.log").write_text(f"INFO ok\nERROR openai call failed with key={planted}\n")
    (tmp_path / "clean.txt").write_text(
        "nothing to see: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "sophia", "secrets", "scan", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    assert "app.log:2:" in done.stdout and "1 finding(s)" in done.stdout
    assert planted not in done.stdout + done.stderr
    clean = subprocess.run(
        [sys.executable, "-m", "sophia", "secrets", "scan", str(tmp_path / "clean.txt")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert clean.returncode == 0 and "no credentials found" in clean.stdout
