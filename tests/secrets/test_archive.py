"""Backups: one encrypted archive of every environment; a restore verifies all of it before cut-over."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from sophia.secrets import archive
from sophia.secrets.backend import EnvironmentError_, TamperedError
from sophia.secrets.keys import generate
from sophia.secrets.store import LocalStore, WrongKeyError

BASE = "values:\n  db:\n    host: db.internal\n    password:\n      fn::secret: fake-archived-password\n"
PROD = "imports: [base]\nvalues:\n  url: pg://${db.password}@${db.host}\n"


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    s = LocalStore(tmp_path / "store", generate())
    s.put("base", BASE)
    s.put("app/prod", PROD)
    s.set("app/prod", "tier", "gold")
    return s


def snapshot(store: LocalStore) -> dict[str, bytes]:
    return {p.relative_to(store.root).as_posix(): p.read_bytes() for p in sorted(store.root.rglob("*.yaml"))}


def test_backup_and_restore_round_trip(store: LocalStore, tmp_path: Path) -> None:
    dest = tmp_path / "b" / "store.backup"
    manifest = archive.backup(store, dest)
    assert [(e.name, e.revision) for e in manifest.environments] == [("app/prod", 2), ("base", 1)]
    assert manifest.environments[1].sha256 == hashlib.sha256(store.file("base").read_bytes()).hexdigest()
    assert manifest.key_id == store.key.key_id
    data = dest.read_bytes()
    assert b"db.internal" not in data and b"fn::secret" not in data  # the whole tarball is encrypted
    assert dest.stat().st_mode & 0o077 == 0

    store.set("base", "db.host", "changed")
    store.delete("app/prod")
    store.put("extra", "values: {x: 1}\n")
    before = store.revision("base")
    archive.restore(store, dest)
    assert store.names() == ["app/prod", "base", "extra"]  # environments not in the archive are kept
    assert store.open("app/prod").values["url"] == "pg://fake-archived-password@db.internal"
    assert store.open("app/prod").values["tier"] == "gold"
    assert store.revision("base") > before  # a restore is a write: watchers see a new revision
    assert store.revision("app/prod") == 2  # re-created as archived
    assert not list(store.root.glob(".restore-*"))

    archive.restore(store, dest, replace=True)
    assert store.names() == ["app/prod", "base"]


def test_restoring_an_unchanged_store_rewrites_nothing(store: LocalStore, tmp_path: Path) -> None:
    dest = tmp_path / "b.bin"
    archive.backup(store, dest)
    before = snapshot(store)
    archive.restore(store, dest)
    assert snapshot(store) == before


def test_passphrase_archives(store: LocalStore, tmp_path: Path) -> None:
    dest = tmp_path / "p.bin"
    archive.backup(store, dest, "a long test passphrase", scrypt_log2_n=10)
    store.set("base", "db.host", "changed")
    with pytest.raises(WrongKeyError, match="wrong passphrase"):
        archive.restore(store, dest, "another passphrase")
    with pytest.raises(WrongKeyError, match="opened with a passphrase"):
        archive.restore(store, dest)
    archive.restore(store, dest, "a long test passphrase")
    assert store.open("base").values["db"]["host"] == "db.internal"
    with pytest.raises(EnvironmentError_, match="scrypt_log2_n"):
        archive.backup(store, dest, "x", scrypt_log2_n=40)
    with pytest.raises(EnvironmentError_, match="empty"):
        archive.backup(store, dest, "")


def test_an_archive_under_another_key_is_named_and_changes_nothing(store: LocalStore, tmp_path: Path) -> None:
    dest = tmp_path / "b.bin"
    other = generate()
    archive.backup(store, dest, other)
    before = snapshot(store)
    with pytest.raises(
        WrongKeyError, match=f"written with key {other.key_id}, the key in use is {store.key.key_id}"
    ):
        archive.restore(store, dest)
    archive.restore(store, dest, other)  # the archive key is not the files' key: still restorable
    assert snapshot(store) == before
    stranger = LocalStore(store.root.parent / "stranger", generate())
    with pytest.raises(WrongKeyError):  # the files inside are sealed under the first store's key
        archive.restore(stranger, dest, other)
    assert stranger.names() == []


def test_a_corrupted_archive_changes_nothing_on_disk(store: LocalStore, tmp_path: Path) -> None:
    dest = tmp_path / "b.bin"
    archive.backup(store, dest)
    store.set("base", "db.host", "newer")
    before = snapshot(store)
    data = bytearray(dest.read_bytes())
    data[len(data) // 2] ^= 0x10
    dest.write_bytes(bytes(data))
    with pytest.raises(TamperedError, match="archive integrity check failed"):
        archive.restore(store, dest, replace=True)
    assert snapshot(store) == before
    dest.write_bytes(b"")
    with pytest.raises(TamperedError, match="truncated"):
        archive.restore(store, dest)


def test_a_damaged_file_inside_an_authentic_archive_is_caught_before_cut_over(
    store: LocalStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The archive's AEAD holds, but one environment file in it fails its own MAC: nothing restored."""
    intact = store.read("base")
    damaged = store.file("base").read_bytes().replace(b"db.internal", b"db.attacker")
    store.file("base").write_bytes(damaged)
    with pytest.raises(TamperedError):
        archive.backup(store, tmp_path / "refused.bin")  # a damaged store is not backed up
    real_open_file = archive.open_file

    def trusting(key: Any, name: str, data: bytes, where: str) -> Any:
        return intact if name == "base" else real_open_file(key, name, data, where)

    monkeypatch.setattr(archive, "open_file", trusting)
    archive.backup(store, tmp_path / "b.bin")
    monkeypatch.setattr(archive, "open_file", real_open_file)
    store.delete("base")
    store.put("base", BASE.replace("db.internal", "current"))
    before = snapshot(store)
    with pytest.raises(TamperedError, match=r"b\.bin:base: integrity check failed"):
        archive.restore(store, tmp_path / "b.bin")
    assert snapshot(store) == before
    assert not list(store.root.glob(".restore-*"))
