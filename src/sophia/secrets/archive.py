"""Backups of a local store: one encrypted, authenticated archive; a restore verifies all of it first.

An archive is a tarball (``manifest.json``, then ``envs/<name>.yaml``: each environment file as
stored, with its own MAC) sealed as one ChaCha20-Poly1305 message::

    "SOPHIABK" | version 1 | kdf (0 master key, 1 passphrase) | key check (8)
    | scrypt salt (16), log2 N, r, p   -- passphrase archives only
    | nonce (12) | ciphertext of the tarball (associated data: every byte before it)
    | SHA-256 of every byte before it (32)

The key is the store's master key (its backup subkey) or a passphrase stretched with scrypt. The
plain SHA-256 at the end tells damage (``TamperedError``) from a wrong key or passphrase
(``WrongKeyError``, when the archive is intact but the key check differs), as the store files do.

``restore`` decrypts and verifies everything in memory (AEAD, manifest hashes, every file's MAC
under the store's key, every definition parsing and every secret opening at its path), writes the
files to a staging folder inside the store, and only then renames them into place, one atomic
rename per file, under the write locks of every environment it touches. A restored environment
gets a revision above the one it replaces, so watchers see the change.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import io
import json
import os
import shutil
import tarfile
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import yaml
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from sophia.secrets.backend import EnvironmentError_, TamperedError
from sophia.secrets.keys import MasterKey, Stored, WrongKeyError, open_file, peek_revision, seal_file
from sophia.secrets.store import LocalStore, load_yaml, validate_name, write_atomic

__all__ = ["Entry", "Manifest", "backup", "restore", "verify"]

_MAGIC = b"SOPHIABK"
_VERSION = 1
_KDF_MASTER, _KDF_SCRYPT = 0, 1
_SCRYPT_R, _SCRYPT_P = 8, 1
_LOG2_N = range(10, 23)  # what a reader accepts: a damaged header must not ask scrypt for terabytes
_SUM = 32


@dataclass(frozen=True)
class Entry:
    """One environment in an archive."""

    name: str
    revision: int
    sha256: str


@dataclass(frozen=True)
class Manifest:
    """What an archive holds: when it was made, by which store key, and each environment."""

    created: str
    key_id: str
    environments: list[Entry]

    def to_json(self) -> bytes:
        """The ``manifest.json`` member of the archive."""
        envs = [{"name": e.name, "revision": e.revision, "sha256": e.sha256} for e in self.environments]
        doc = {"format": 1, "created": self.created, "key": self.key_id, "environments": envs}
        return json.dumps(doc, indent=1, sort_keys=True).encode()


# --- keys --------------------------------------------------------------------------------------


def _scrypt(passphrase: str, salt: bytes, log2_n: int) -> bytes:
    return Scrypt(salt=salt, length=32, n=1 << log2_n, r=_SCRYPT_R, p=_SCRYPT_P).derive(passphrase.encode())


def _keys(secret: MasterKey | str, kdf: int, params: bytes) -> tuple[bytes, bytes]:
    """The AEAD key and the 8-byte key check of an archive."""
    if isinstance(secret, MasterKey):
        return secret.backup_key, bytes.fromhex(secret.key_id)
    derived = _scrypt(secret, params[:16], params[16])
    aead = hmac.new(derived, b"sophia-backup-aead", hashlib.sha256).digest()
    return aead, hmac.new(derived, b"sophia-backup-key-check", hashlib.sha256).digest()[:8]


# --- writing -----------------------------------------------------------------------------------


def _tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    now = int(time.time())
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), now, 0o600
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def backup(
    store: LocalStore,
    dest: Path,
    passphrase_or_key: MasterKey | str | None = None,
    *,
    scrypt_log2_n: int = 15,
) -> Manifest:
    """Write every environment of ``store`` to one encrypted archive at ``dest`` (mode 0600).

    The key is the store's master key unless a passphrase (scrypt, N = 2**scrypt_log2_n) or another
    master key is given. Each file is verified first: a damaged store is not backed up silently.
    """
    secret = store.key if passphrase_or_key is None else passphrase_or_key
    files: dict[str, bytes] = {}
    entries: list[Entry] = []
    for name in store.names():
        data = store.file(name).read_bytes()
        stored = open_file(store.key, name, data, str(store.file(name)))
        files[f"envs/{name}.yaml"] = data
        entries.append(Entry(name, stored.revision, hashlib.sha256(data).hexdigest()))
    created = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    manifest = Manifest(created, store.key.key_id, entries)
    tarball = _tar({"manifest.json": manifest.to_json(), **files})
    if isinstance(secret, MasterKey):
        kdf, params = _KDF_MASTER, b""
    else:
        if not secret:
            raise EnvironmentError_("the backup passphrase is empty")
        if scrypt_log2_n not in _LOG2_N:
            raise EnvironmentError_(f"scrypt_log2_n must be in {_LOG2_N.start}..{_LOG2_N.stop - 1}")
        kdf, params = _KDF_SCRYPT, os.urandom(16) + bytes([scrypt_log2_n, _SCRYPT_R, _SCRYPT_P])
    aead_key, check = _keys(secret, kdf, params)
    nonce = os.urandom(12)
    header = _MAGIC + bytes([_VERSION, kdf]) + check + params + nonce
    body = header + ChaCha20Poly1305(aead_key).encrypt(nonce, tarball, header)
    write_atomic(dest, body + hashlib.sha256(body).digest())
    return manifest


# --- reading -----------------------------------------------------------------------------------


def _unseal(data: bytes, secret: MasterKey | str, where: str) -> bytes:
    def tampered(reason: str) -> TamperedError:
        return TamperedError(f"{where}: archive integrity check failed ({reason}); nothing was restored")

    fixed = len(_MAGIC) + 2 + 8
    if len(data) < fixed + 12 + 16 + _SUM or data[: len(_MAGIC)] != _MAGIC:
        raise tampered("not a sophia backup, or truncated")
    if not hmac.compare_digest(hashlib.sha256(data[:-_SUM]).digest(), data[-_SUM:]):
        raise tampered("checksum mismatch")
    version, kdf = data[len(_MAGIC)], data[len(_MAGIC) + 1]
    check = data[fixed - 8 : fixed]
    if version != _VERSION or kdf not in (_KDF_MASTER, _KDF_SCRYPT):
        raise tampered(f"unknown version {version} or key derivation {kdf}")
    params = data[fixed : fixed + 19] if kdf == _KDF_SCRYPT else b""
    if params and (params[16] not in _LOG2_N or params[17:] != bytes([_SCRYPT_R, _SCRYPT_P])):
        raise tampered("unsupported scrypt parameters")
    if (kdf == _KDF_SCRYPT) != isinstance(secret, str):
        wanted = "a passphrase" if kdf == _KDF_SCRYPT else "the master key"
        raise WrongKeyError(f"{where}: this archive is opened with {wanted}")
    aead_key, expected = _keys(secret, kdf, params)
    if not hmac.compare_digest(check, expected):
        if isinstance(secret, MasterKey):
            raise WrongKeyError(
                f"{where}: this archive was written with key {check.hex()}, the key in use is {secret.key_id}"
            )
        raise WrongKeyError(f"{where}: wrong passphrase")
    start = fixed + len(params)
    nonce = data[start : start + 12]
    try:
        return ChaCha20Poly1305(aead_key).decrypt(nonce, data[start + 12 : -_SUM], data[: start + 12])
    except InvalidTag:
        raise tampered("authentication failed") from None


def _members(tarball: bytes, where: str) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:") as tar:
            for member in tar:
                extracted = tar.extractfile(member) if member.isfile() else None
                if extracted is None or member.name in out:
                    raise TamperedError(f"{where}: unexpected archive member {member.name!r}")
                out[member.name] = extracted.read()
    except tarfile.TarError as exc:
        raise TamperedError(f"{where}: the archive's tarball is malformed: {exc}") from None
    return out


def _manifest(raw: bytes | None, where: str) -> Manifest:
    try:
        doc = json.loads(raw or b"")
        entries = [Entry(str(e["name"]), int(e["revision"]), str(e["sha256"])) for e in doc["environments"]]
        return Manifest(str(doc["created"]), str(doc["key"]), entries)
    except (ValueError, KeyError, TypeError) as exc:
        raise TamperedError(f"{where}: the manifest is missing or malformed ({exc})") from None


def verify(
    store: LocalStore, archive: Path, passphrase_or_key: MasterKey | str | None = None
) -> tuple[Manifest, dict[str, Stored], dict[str, bytes]]:
    """Decrypt ``archive`` and check every part of it against ``store``'s key; changes nothing.

    Returns the manifest, each environment's verified contents and its file bytes.
    """
    where = str(archive)
    members = _members(
        _unseal(archive.read_bytes(), store.key if passphrase_or_key is None else passphrase_or_key, where),
        where,
    )
    manifest = _manifest(members.pop("manifest.json", None), where)
    stored: dict[str, Stored] = {}
    raw: dict[str, bytes] = {}
    for entry in manifest.environments:
        try:
            name = validate_name(entry.name)
        except EnvironmentError_ as exc:
            raise TamperedError(f"{where}: {exc}") from None
        data = members.pop(f"envs/{name}.yaml", None)
        if data is None or hashlib.sha256(data).hexdigest() != entry.sha256:
            raise TamperedError(f"{where}: {name} is missing or does not match the manifest")
        item = open_file(store.key, name, data, f"{where}:{name}")
        if item.revision != entry.revision:
            raise TamperedError(
                f"{where}: {name} is at revision {item.revision}, the manifest says {entry.revision}"
            )
        try:
            doc = load_yaml(item.body)
            if doc is not None and not isinstance(doc, dict):
                raise EnvironmentError_("environment must be an object")
            store.seal_secrets(name, doc)  # every ciphertext must open at its own path
        except (yaml.YAMLError, EnvironmentError_) as exc:
            raise TamperedError(f"{where}: {name} does not verify: {exc}") from None
        stored[name], raw[name] = item, data
    if members:
        raise TamperedError(f"{where}: files not in the manifest: {sorted(members)}")
    return manifest, stored, raw


def restore(
    store: LocalStore,
    archive: Path,
    passphrase_or_key: MasterKey | str | None = None,
    *,
    replace: bool = False,
) -> Manifest:
    """Restore the environments of ``archive`` into ``store`` once all of it has verified.

    Environments not in the archive are kept, unless ``replace`` (then they are deleted).
    """
    manifest, stored, raw = verify(store, archive, passphrase_or_key)
    drop = [n for n in store.names() if n not in stored] if replace else []
    store.root.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as locks:
        for name in sorted({*stored, *drop}):
            locks.enter_context(store.lock(name))
        staging = Path(tempfile.mkdtemp(prefix=".restore-", dir=store.root))
        try:
            staged = _stage(store, staging, stored, raw)
            for name, path in staged.items():  # cut-over: one atomic rename per file
                target = store.file(name)
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(path, target)
                _fsync_dir(target.parent)
            for name in drop:
                store.file(name).unlink(missing_ok=True)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return manifest


def _stage(
    store: LocalStore, staging: Path, stored: dict[str, Stored], raw: dict[str, bytes]
) -> dict[str, Path]:
    """Write each environment that differs from the store into ``staging``, revision bumped past the
    current one so watchers polling ``revision`` see the change; fsynced before any cut-over."""
    staged: dict[str, Path] = {}
    for name, item in stored.items():
        target = store.file(name)
        data = raw[name]
        if target.exists():
            current = target.read_bytes()
            if current == data:
                continue
            revision = max(item.revision, peek_revision(current) or 0) + 1
            data = seal_file(store.key, name, item.body, revision)
        path = staging / f"{name}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        staged[name] = path
    return staged


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
