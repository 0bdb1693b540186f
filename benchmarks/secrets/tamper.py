"""Tamper evidence of the local secrets store and its backups: random corruptions, all detected?

    .venv/bin/python benchmarks/secrets/tamper.py [--store N] [--archive N] [--seed S]

Builds a store of three environments (secrets, plain values, lists, an import graph, the
``environmentVariables`` and ``files`` outputs: the fixture of tests/secrets/test_tamper.py), then
damages one file at a time, each time starting from an intact copy: a flipped bit, a byte set to
another value, a byte deleted or a byte inserted, at a uniformly random offset of the whole file.
Each damaged file is read through ``definition()``, ``open()`` of itself, or ``open()`` of an
environment importing it; the same for a backup archive through ``restore()``. A corruption counts
as detected only when reading raises ``TamperedError`` (a wrong value or any other exception is a
miss); after the archive runs the store's files must be byte-for-byte unchanged.
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

from sophia.secrets import archive
from sophia.secrets.backend import TamperedError
from sophia.secrets.keys import generate
from sophia.secrets.store import LocalStore

ROOT = Path(__file__).resolve().parents[2]


def _fixture() -> ModuleType:
    """The test's environments and corruption function, so the benchmark and the test cannot drift."""
    path = ROOT / "tests" / "secrets" / "test_tamper.py"
    spec = importlib.util.spec_from_file_location("tamper_fixture", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def run_store(fx: ModuleType, store: LocalStore, n: int, rng: random.Random) -> tuple[int, float]:
    originals = {name: store.file(name).read_bytes() for name in fx.IMPORTERS}
    names = sorted(originals)
    detected = 0
    started = time.perf_counter()
    for i in range(n):
        name = rng.choice(names)
        damaged, _ = fx.corrupt(originals[name], rng)
        fx.overwrite(store.file(name), damaged)
        try:
            if i % 4 == 3:
                store.open(fx.IMPORTERS[name])
            elif i % 2:
                store.open(name)
            else:
                store.definition(name)
        except TamperedError:
            detected += 1
        except Exception as exc:  # noqa: BLE001 - any other outcome is a miss, reported
            print(f"  miss: {name}: {type(exc).__name__}: {exc}")
        fx.overwrite(store.file(name), originals[name])
    return detected, time.perf_counter() - started


def run_archive(
    fx: ModuleType, store: LocalStore, dest: Path, n: int, rng: random.Random
) -> tuple[int, float, bool]:
    archive.backup(store, dest)
    intact = dest.read_bytes()
    store.set("base", "db.port", 6543)
    before = {p: p.read_bytes() for p in sorted(store.root.rglob("*.yaml"))}
    detected = 0
    started = time.perf_counter()
    for _ in range(n):
        damaged, _ = fx.corrupt(intact, rng)
        fx.overwrite(dest, damaged)
        try:
            archive.restore(store, dest, replace=True)
        except TamperedError:
            detected += 1
        except Exception as exc:  # noqa: BLE001 - any other outcome is a miss, reported
            print(f"  miss: {type(exc).__name__}: {exc}")
    seconds = time.perf_counter() - started
    unchanged = before == {p: p.read_bytes() for p in sorted(store.root.rglob("*.yaml"))}
    return detected, seconds, unchanged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=int, default=10_000, help="corruptions of environment files")
    parser.add_argument("--archive", type=int, default=1_000, help="corruptions of a backup archive")
    parser.add_argument("--seed", type=int, default=20261203)
    args = parser.parse_args()
    fx = _fixture()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="sophia-tamper-") as tmp:
        store = LocalStore(Path(tmp) / "store", generate())
        store.put("base", fx.BASE)
        store.put("shared", fx.SHARED)
        store.put("app/prod", fx.PROD)
        sizes = ", ".join(f"{n} {store.file(n).stat().st_size} B" for n in sorted(fx.IMPORTERS))
        detected, seconds = run_store(fx, store, args.store, rng)
        print(f"store files ({sizes}): {args.store} corruptions, {detected} detected, {seconds:.2f} s")
        a_detected, a_seconds, unchanged = run_archive(fx, store, Path(tmp) / "backup.bin", args.archive, rng)
        size = (Path(tmp) / "backup.bin").stat().st_size
        print(
            f"backup archive ({size} B): {args.archive} corruptions, {a_detected} detected, {a_seconds:.2f} s; "
            f"store unchanged: {'yes' if unchanged else 'NO'}"
        )
    ok = detected == args.store and a_detected == args.archive and unchanged
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
