"""Tamper evidence: random damage anywhere in a stored environment or a backup is always detected.

Each corruption starts from an intact copy and changes it once: a flipped bit, a byte set to another
value, a byte deleted or a byte inserted, at a uniformly random offset of the whole file (secrets,
plain values, whitespace, the metadata, the MAC, the checksum). Reading must raise TamperedError:
not a wrong value, not another exception.
"""

from __future__ import annotations

import hashlib
import os
import random
import time
from pathlib import Path

import pytest

from sophia.secrets import archive
from sophia.secrets.backend import TamperedError
from sophia.secrets.keys import generate
from sophia.secrets.store import LocalStore, WrongKeyError

STORE_CORRUPTIONS = 10_000
ARCHIVE_CORRUPTIONS = 1_000
RESUMMED_CORRUPTIONS = 2_000

BASE = """\
values:
  db:
    host: db.internal
    port: 5432
    password:
      fn::secret: fake-db-password-for-tests
  flags: [a, b, c]
"""
SHARED = """\
values:
  region: eu-west-1
  token:
    fn::secret: fake-shared-token
"""
PROD = """\
imports: [base, shared]
values:
  url: postgres://app:${db.password}@${db.host}:${db.port}/app
  api:
    key:
      fn::secret: fake-api-key-value
  environmentVariables:
    DATABASE_URL: ${url}
    API_KEY: ${api.key}
    REGION: ${region}
  files:
    TOKEN_FILE: ${token}
"""
#: who imports whom: opening an importer must also fail when an import is damaged
IMPORTERS = {"base": "app/prod", "shared": "app/prod", "app/prod": "app/prod"}


def corrupt(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    """One random change to ``data`` and a description of it (for the failure message)."""
    op = rng.randrange(4)
    if op == 3:
        at = rng.randrange(len(data) + 1)
        byte = rng.randrange(256)
        return data[:at] + bytes([byte]) + data[at:], f"insert {byte:#04x} at {at}"
    at = rng.randrange(len(data))
    if op == 2:
        return data[:at] + data[at + 1 :], f"delete at {at}"
    if op == 1:
        new = rng.randrange(255)
        new += new >= data[at]  # any value but the one there
    else:
        new = data[at] ^ (1 << rng.randrange(8))
    return data[:at] + bytes([new]) + data[
        at + 1 :
    ], f"{'set' if op else 'flip'} {data[at]:#04x}->{new:#04x} at {at}"


def overwrite(path: Path, data: bytes) -> None:
    """Replace a file's bytes in place: a truncate to zero makes ext4 flush on close, 50x slower."""
    fd = os.open(path, os.O_WRONLY)
    try:
        os.pwrite(fd, data, 0)
        os.ftruncate(fd, len(data))
    finally:
        os.close(fd)


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    s = LocalStore(tmp_path / "store", generate())
    s.put("base", BASE)
    s.put("shared", SHARED)
    s.put("app/prod", PROD)
    return s


def test_every_random_corruption_of_a_stored_environment_raises_tampered(store: LocalStore) -> None:
    expected = store.open("app/prod")
    assert (
        expected.environment_variables["DATABASE_URL"]
        == "postgres://app:fake-db-password-for-tests@db.internal:5432/app"
    )
    originals = {name: store.file(name).read_bytes() for name in IMPORTERS}
    names = sorted(originals)
    rng = random.Random(20261203)
    missed: list[str] = []
    started = time.perf_counter()
    for i in range(STORE_CORRUPTIONS):
        name = rng.choice(names)
        damaged, how = corrupt(originals[name], rng)
        path = store.file(name)
        overwrite(path, damaged)
        # definition() of the damaged file, open() of it, or (every 4th) open() of an importer
        try:
            if i % 4 == 3:
                store.open(IMPORTERS[name])
            elif i % 2:
                store.open(name)
            else:
                store.definition(name)
            missed.append(f"{name}: {how}: no error")
        except TamperedError as exc:
            if str(path) not in str(exc):
                missed.append(f"{name}: {how}: the error does not name the file: {exc}")
        except Exception as exc:
            missed.append(f"{name}: {how}: {type(exc).__name__}: {exc}")
        overwrite(path, originals[name])
    seconds = time.perf_counter() - started
    assert missed == []
    assert store.open("app/prod").values == expected.values  # intact again: the test was not vacuous
    print(
        f"\nstore: {STORE_CORRUPTIONS} corruptions, {STORE_CORRUPTIONS - len(missed)} detected, {seconds:.2f}s"
    )
    assert seconds < 30


def test_corruptions_with_the_checksum_recomputed_are_caught_by_the_mac(store: LocalStore) -> None:
    """An editor who "fixes" the plain checksum after a change: the keyed MAC still refuses it.

    A change that lands on the key id in the metadata may read as another key's file instead
    (WrongKeyError): still nothing is decrypted and no value returned.
    """
    originals = {name: store.file(name).read_bytes() for name in IMPORTERS}
    names = sorted(originals)
    rng = random.Random(99)
    outcomes: dict[str, int] = {"tampered": 0, "wrong key": 0}
    missed: list[str] = []
    for _ in range(RESUMMED_CORRUPTIONS):
        name = rng.choice(names)
        signed = originals[name][: originals[name].rindex(b"# sophia-sum ")]
        damaged, how = corrupt(signed, rng)
        overwrite(
            store.file(name),
            damaged + b"# sophia-sum " + hashlib.sha256(damaged).hexdigest().encode() + b"\n",
        )
        try:
            store.open(name)
            missed.append(f"{name}: {how}: no error")
        except TamperedError:
            outcomes["tampered"] += 1
        except WrongKeyError:
            outcomes["wrong key"] += 1
        except Exception as exc:
            missed.append(f"{name}: {how}: {type(exc).__name__}: {exc}")
        overwrite(store.file(name), originals[name])
    assert missed == []
    assert outcomes["tampered"] >= RESUMMED_CORRUPTIONS * 0.95
    print(f"\nchecksum recomputed: {RESUMMED_CORRUPTIONS} corruptions, {outcomes}")


def test_every_random_corruption_of_a_backup_raises_tampered_and_changes_nothing(
    store: LocalStore, tmp_path: Path
) -> None:
    dest = tmp_path / "backup.bin"
    archive.backup(store, dest)
    intact = dest.read_bytes()
    store.set("base", "db.port", 6543)  # the store now differs from the archive
    before = {p: p.read_bytes() for p in sorted(store.root.rglob("*.yaml"))}
    rng = random.Random(7)
    missed: list[str] = []
    started = time.perf_counter()
    for _ in range(ARCHIVE_CORRUPTIONS):
        damaged, how = corrupt(intact, rng)
        overwrite(dest, damaged)
        try:
            archive.restore(store, dest, replace=True)
            missed.append(f"{how}: restored")
        except TamperedError:
            pass
        except Exception as exc:
            missed.append(f"{how}: {type(exc).__name__}: {exc}")
    seconds = time.perf_counter() - started
    assert missed == []
    after = {p: p.read_bytes() for p in sorted(store.root.rglob("*.yaml"))}
    assert after == before
    assert not list(store.root.glob(".restore-*"))  # no staging left behind
    print(
        f"\narchive: {ARCHIVE_CORRUPTIONS} corruptions, {ARCHIVE_CORRUPTIONS - len(missed)} detected, {seconds:.2f}s"
    )
    dest.write_bytes(intact)
    archive.restore(store, dest)
    assert store.open("base").values["db"]["port"] == 5432
