"""The local store's master key: where it comes from, what is derived from it, what it seals.

One 32-byte master key protects a store. It is never used directly: HKDF-SHA256 derives one
subkey per purpose (secret values, file MACs, backups), so a flaw in one use cannot be turned
against another. Its *key id* (8 bytes of a domain-separated SHA-256, in hex) is written beside
every ciphertext and every file, which is what lets the store say "written with key X, the key in
use is Y" instead of calling a wrong key tampering.

Sources, first match wins (:func:`load_key`):

1. ``SOPHIA_SECRETS_KEY``: base64 of the 32 bytes, for containers where no file or keyring exists;
2. ``file``: ``<config_dir>/secrets.key``, base64 text, refused when group or others may read it
   (as ssh refuses a private key), created 0600 in a 0700 folder;
3. ``keyring``: the OS keyring (``keyring`` package, optional), service ``sophia``, user = store id;
4. ``age``: ``<config_dir>/secrets.key.age``, the key file encrypted to age x25519 recipients
   (``pyrage``, optional), opened with an identity file.

What the key seals (the local store's formats; ``store`` explains the file layout):

- one secret value: ``01 | key id (8) | nonce (12) | ChaCha20-Poly1305 ciphertext``, inside ESC's
  ``escx`` envelope, associated data binding the environment name and the secret's path;
- one environment file: the definition, then ``# sophia-store <metadata>``, ``# sophia-mac <HMAC>``
  and ``# sophia-sum <SHA-256>`` lines. The keyed MAC detects any change by someone without the key;
  the plain checksum lets a file sealed with *another* key (intact sum, other key id) be told apart
  from a damaged one, so every changed, missing or added byte is :class:`TamperedError` and a
  wrong key is :class:`WrongKeyError`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import re
import secrets
import stat
import struct
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from sophia.errors import ConfigError, DependencyMissing
from sophia.secrets.backend import EnvironmentError_, TamperedError
from sophia.secrets.esc_value import go_base64_decode, open_envelope

__all__ = [
    "ENV_VAR",
    "FORMAT",
    "KEYRING_SERVICE",
    "KEY_BYTES",
    "KeyPermissionError",
    "KeySource",
    "KeyUnavailable",
    "MasterKey",
    "Stored",
    "WrongKeyError",
    "age_key_path",
    "decrypt_payload",
    "decrypt_secret",
    "encrypt_secret",
    "generate",
    "init_key",
    "key_file_path",
    "load_key",
    "open_file",
    "peek_revision",
    "read_age_key_file",
    "read_key_file",
    "read_keyring",
    "seal_envelope",
    "seal_file",
    "write_age_key_file",
    "write_key_file",
    "write_keyring",
]

KEY_BYTES = 32
ENV_VAR = "SOPHIA_SECRETS_KEY"
KEYRING_SERVICE = "sophia"
KeySource = Literal["file", "keyring", "age"]
FORMAT = 1
_HEADER = "# sophia secrets master key: keep it out of repositories and backups of this folder\n"


class KeyUnavailable(ConfigError):
    """The master key could not be found or read; the message says where it looked and why."""

    code = "secrets_key_unavailable"


class KeyPermissionError(KeyUnavailable):
    """A key or identity file may be read by group or others: refused, as ssh refuses such keys."""


@dataclass(frozen=True)
class MasterKey:
    """The 32 bytes of a store's master key and where they came from (``source``, for messages)."""

    raw: bytes = field(repr=False)
    source: str = "memory"

    def __post_init__(self) -> None:
        if len(self.raw) != KEY_BYTES:
            raise KeyUnavailable(f"a secrets key is {KEY_BYTES} bytes, got {len(self.raw)} ({self.source})")

    @cached_property
    def key_id(self) -> str:
        """8 bytes of a hash of the key, hex: names the key in messages without revealing it."""
        return hashlib.sha256(b"sophia-secrets-key-id\0" + self.raw).digest()[:8].hex()

    def subkey(self, purpose: str) -> bytes:
        """A 32-byte key for one purpose, so each use of the master key is independent of the others."""
        hkdf = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"sophia/secrets/" + purpose.encode()
        )
        return hkdf.derive(self.raw)

    @cached_property
    def secret_key(self) -> bytes:
        """The AEAD key of ``fn::secret`` values."""
        return self.subkey("secret-aead-v1")

    @cached_property
    def mac_key(self) -> bytes:
        """The HMAC key of environment files."""
        return self.subkey("file-mac-v1")

    @cached_property
    def backup_key(self) -> bytes:
        """The AEAD key of backup archives made without a passphrase."""
        return self.subkey("backup-aead-v1")


def generate(source: str = "generated") -> MasterKey:
    """A fresh random key."""
    return MasterKey(secrets.token_bytes(KEY_BYTES), source)


def key_file_path(config_dir: Path) -> Path:
    """Where the plain key file lives: ``<config_dir>/secrets.key``."""
    return config_dir / "secrets.key"


def age_key_path(config_dir: Path) -> Path:
    """Where the age-encrypted key file lives: ``<config_dir>/secrets.key.age``."""
    return config_dir / "secrets.key.age"


def _encode(key: MasterKey) -> bytes:
    return (_HEADER + base64.b64encode(key.raw).decode() + "\n").encode()


def _decode(text: bytes | str, source: str) -> MasterKey:
    if isinstance(text, bytes):
        try:
            text = text.decode()
        except UnicodeDecodeError:
            raise KeyUnavailable(f"{source}: not a sophia secrets key (not text)") from None
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if len(lines) != 1:
        raise KeyUnavailable(f"{source}: expected one line of base64, found {len(lines)}")
    try:
        raw = base64.b64decode(lines[0], validate=True)
    except binascii.Error:
        raise KeyUnavailable(f"{source}: the key is not valid base64") from None
    return MasterKey(raw, source)


def _private_dir(folder: Path) -> None:
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(folder, 0o700)


def _write_private(path: Path, data: bytes, *, overwrite: bool) -> None:
    """Write a 0600 file; without ``overwrite`` an existing key is never replaced (it would orphan data)."""
    _private_dir(path.parent)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        raise KeyUnavailable(
            f"{path} already exists: refusing to replace a key that data may depend on"
        ) from None
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def _read_private(path: Path, what: str) -> bytes:
    """Read a file only its owner may read: group/other permission bits are refused, as ssh does."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise KeyUnavailable(f"no {what} at {path} (create one with `sophia env init`)") from None
    if st.st_mode & 0o077:
        mode = stat.S_IMODE(st.st_mode)
        raise KeyPermissionError(
            f"permissions {mode:04o} for {path} are too open: the {what} must be readable by its owner "
            f"only (chmod 600 {path})"
        )
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        raise KeyPermissionError(f"{path} is owned by uid {st.st_uid}, not by the current user")
    return path.read_bytes()


# --- key file ----------------------------------------------------------------------------------


def write_key_file(path: Path, key: MasterKey, *, overwrite: bool = False) -> None:
    """Store ``key`` as base64 text in a 0600 file inside a 0700 folder."""
    _write_private(path, _encode(key), overwrite=overwrite)


def read_key_file(path: Path) -> MasterKey:
    """The key of a key file; KeyPermissionError when group or others may read it."""
    return _decode(_read_private(path, "secrets key file"), f"file:{path}")


# --- OS keyring --------------------------------------------------------------------------------


def _keyring() -> Any:
    try:
        import keyring
    except ImportError:
        raise DependencyMissing(
            "keyring", "keyring", purpose="keeping the secrets key in the OS keyring"
        ) from None
    return keyring


def write_keyring(store_id: str, key: MasterKey) -> None:
    """Store ``key`` in the OS keyring under service ``sophia`` and user ``store_id``."""
    kr = _keyring()
    kr.set_password(KEYRING_SERVICE, store_id, base64.b64encode(key.raw).decode())


def read_keyring(store_id: str) -> MasterKey:
    """The key kept in the OS keyring for ``store_id`` (KeyUnavailable when there is none)."""
    kr = _keyring()
    try:
        text = kr.get_password(KEYRING_SERVICE, store_id)
    except kr.errors.KeyringError as exc:
        raise KeyUnavailable(f"the OS keyring could not be read: {exc}") from exc
    if text is None:
        raise KeyUnavailable(
            f"no secrets key for store {store_id!r} in the OS keyring (service {KEYRING_SERVICE!r})"
        )
    return _decode(text, f"keyring:{store_id}")


# --- age ---------------------------------------------------------------------------------------


def _pyrage() -> Any:
    try:
        import pyrage
    except ImportError:
        raise DependencyMissing(
            "pyrage", "age", purpose="encrypting the secrets key to age recipients"
        ) from None
    return pyrage


def write_age_key_file(
    path: Path, key: MasterKey, recipients: Sequence[str], *, overwrite: bool = False
) -> None:
    """Store ``key`` encrypted to age x25519 recipients (``age1…``): any one identity opens it."""
    pyrage = _pyrage()
    if not recipients:
        raise KeyUnavailable("age needs at least one recipient (an age1… public key)")
    try:
        parsed = [pyrage.x25519.Recipient.from_str(r.strip()) for r in recipients]
    except pyrage.RecipientError as exc:
        raise KeyUnavailable(f"invalid age recipient: {exc}") from exc
    _write_private(path, pyrage.encrypt(_encode(key), parsed), overwrite=overwrite)


def read_age_key_file(path: Path, identity_file: Path) -> MasterKey:
    """Decrypt an age-encrypted key file with the x25519 identities of ``identity_file``."""
    pyrage = _pyrage()
    try:
        blob = path.read_bytes()
    except FileNotFoundError:
        raise KeyUnavailable(f"no age-encrypted secrets key at {path}") from None
    text = _read_private(identity_file, "age identity file").decode(errors="replace")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip().startswith("AGE-SECRET-KEY-")]
    try:
        identities = [pyrage.x25519.Identity.from_str(ln) for ln in lines]
    except pyrage.IdentityError as exc:
        raise KeyUnavailable(f"{identity_file}: invalid age identity: {exc}") from exc
    if not identities:
        raise KeyUnavailable(f"{identity_file} holds no age x25519 identity (AGE-SECRET-KEY-1…)")
    try:
        plain = pyrage.decrypt(blob, identities)
    except pyrage.DecryptError as exc:
        raise KeyUnavailable(f"{path} could not be decrypted with {identity_file}: {exc}") from exc
    return _decode(plain, f"age:{path}")


# --- resolution --------------------------------------------------------------------------------


def _from_env(environ: Mapping[str, str]) -> MasterKey | None:
    text = environ.get(ENV_VAR)
    if text is None:
        return None
    return _decode(text, f"env:{ENV_VAR}")


def load_key(
    config_dir: Path,
    *,
    source: KeySource = "file",
    store_id: str = "default",
    identity: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> MasterKey:
    """The master key: ``SOPHIA_SECRETS_KEY`` when set, else the configured ``source``."""
    from_env = _from_env(os.environ if environ is None else environ)
    if from_env is not None:
        return from_env
    if source == "file":
        return read_key_file(key_file_path(config_dir))
    if source == "keyring":
        return read_keyring(store_id)
    if identity is None:
        raise KeyUnavailable("the age key source needs an identity file (an AGE-SECRET-KEY-1… line)")
    return read_age_key_file(age_key_path(config_dir), identity)


def init_key(
    config_dir: Path,
    *,
    source: KeySource = "file",
    store_id: str = "default",
    recipients: Sequence[str] = (),
    overwrite: bool = False,
) -> MasterKey:
    """Create a new master key in ``source`` and return it (never replaces one unless ``overwrite``)."""
    key = generate(source)
    if source == "file":
        write_key_file(key_file_path(config_dir), key, overwrite=overwrite)
    elif source == "keyring":
        if not overwrite and _keyring().get_password(KEYRING_SERVICE, store_id) is not None:
            raise KeyUnavailable(f"the OS keyring already holds a secrets key for store {store_id!r}")
        write_keyring(store_id, key)
    else:
        write_age_key_file(age_key_path(config_dir), key, recipients, overwrite=overwrite)
    return key


# --- the sealed formats ------------------------------------------------------------------------

_TRAILER = re.compile(
    rb"# sophia-store (\{[^\n]*\})\n# sophia-mac ([0-9a-f]{64})\n# sophia-sum ([0-9a-f]{64})\n\Z"
)
_ENVELOPE = b"escx" + struct.pack(">I", 1)
_PAYLOAD_VERSION = b"\x01"
_HEADER_LEN = 1 + 8 + 12  # version, key id, nonce


class WrongKeyError(EnvironmentError_):
    """Data written with another master key: intact, but not ours to open (not tampering)."""


@dataclass(frozen=True)
class Stored:
    """A verified environment file: its definition text and the metadata of its integrity block."""

    name: str
    body: str
    revision: int
    updated: str
    key_id: str


# --- what the key seals: an environment file ---------------------------------------------------


def seal_envelope(payload: bytes) -> bytes:
    """ESC's ciphertext envelope around ``payload`` (the inverse of ``esc_value.open_envelope``)."""
    blob = _ENVELOPE + payload
    return blob + struct.pack(">I", zlib.crc32(blob))


def _mac(key: MasterKey, name: str, signed: bytes) -> str:
    msg = b"sophia-store-v1\0" + name.encode() + b"\0" + signed
    return hmac.new(key.mac_key, msg, hashlib.sha256).hexdigest()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def seal_file(key: MasterKey, name: str, body: str, revision: int, updated: str | None = None) -> bytes:
    """An environment file: ``body`` then the integrity block (metadata, MAC, checksum)."""
    data = body.encode()
    if data and not data.endswith(b"\n"):
        data += b"\n"
    meta = {
        "format": FORMAT,
        "key": key.key_id,
        "name": name,
        "revision": revision,
        "updated": updated or _now(),
    }
    data += b"# sophia-store " + json.dumps(meta, sort_keys=True, separators=(",", ":")).encode() + b"\n"
    data += b"# sophia-mac " + _mac(key, name, data).encode() + b"\n"
    return data + b"# sophia-sum " + hashlib.sha256(data).hexdigest().encode() + b"\n"


def _meta(raw: bytes) -> dict[str, Any] | None:
    try:
        meta = json.loads(raw)
    except ValueError:
        return None
    types = {"format": int, "key": str, "name": str, "revision": int, "updated": str}
    if not isinstance(meta, dict) or set(meta) != set(types):
        return None
    if not all(type(meta[k]) is t for k, t in types.items()):
        return None
    return meta


def open_file(key: MasterKey, name: str, data: bytes, where: str) -> Stored:
    """Verify an environment file of ``name`` (``where`` names it in errors) and return its parts."""

    def tampered(reason: str) -> TamperedError:
        return TamperedError(f"{where}: integrity check failed ({reason}); nothing was decrypted")

    m = _TRAILER.search(data)
    if m is None:
        raise tampered("the integrity block at the end of the file is missing or damaged")
    sum_at = m.start(3) - len(b"# sophia-sum ")
    if not hmac.compare_digest(hashlib.sha256(data[:sum_at]).hexdigest().encode(), m.group(3)):
        raise tampered("checksum mismatch")
    meta = _meta(m.group(1))
    if meta is None:
        raise tampered("malformed metadata")
    if meta["key"] != key.key_id:
        raise WrongKeyError(
            f"{where}: this store was written with key {meta['key']}, the key in use is {key.key_id} "
            f"({key.source})"
        )
    if meta["name"] != name:
        raise tampered(f"the file holds environment {meta['name']!r}, not {name!r}")
    mac_at = m.start(2) - len(b"# sophia-mac ")
    if not hmac.compare_digest(_mac(key, name, data[:mac_at]).encode(), m.group(2)):
        raise tampered("MAC mismatch")
    if meta["format"] != FORMAT:
        raise EnvironmentError_(
            f"{where}: format {meta['format']} is not supported (this is format {FORMAT})"
        )
    body = data[: m.start()].decode()
    return Stored(name, body, meta["revision"], meta["updated"], meta["key"])


def peek_revision(data: bytes) -> int | None:
    """The revision a file claims, unverified (only to keep revisions growing over a damaged file)."""
    m = _TRAILER.search(data)
    meta = _meta(m.group(1)) if m else None
    return None if meta is None else int(meta["revision"])


# --- what the key seals: one secret value ---


def _aad(header: bytes, name: str, path: str) -> bytes:
    return b"sophia-secret-v1\0" + header + name.encode() + b"\0" + path.encode()


def encrypt_secret(key: MasterKey, name: str, path: str, plaintext: str) -> str:
    """``plaintext`` sealed for ``path`` of environment ``name``: the base64 ``ciphertext`` value."""
    header = _PAYLOAD_VERSION + bytes.fromhex(key.key_id) + os.urandom(12)
    sealed = ChaCha20Poly1305(key.secret_key).encrypt(
        header[9:], plaintext.encode(), _aad(header, name, path)
    )
    return base64.b64encode(seal_envelope(header + sealed)).decode()


def decrypt_payload(key: MasterKey, name: str, path: str, payload: bytes) -> str:
    """Open a payload written for ``path`` of ``name`` (ValueError saying why it does not open)."""
    if len(payload) < _HEADER_LEN + 16 or payload[:1] != _PAYLOAD_VERSION:
        raise ValueError("not a sophia secret payload")
    if payload[1:9].hex() != key.key_id:
        raise ValueError(
            f"this secret was written with key {payload[1:9].hex()}, the key in use is {key.key_id}"
        )
    header = payload[:_HEADER_LEN]
    try:
        plain = ChaCha20Poly1305(key.secret_key).decrypt(
            header[9:], payload[_HEADER_LEN:], _aad(header, name, path)
        )
    except InvalidTag:
        raise ValueError(f"the ciphertext does not belong at {path} of environment {name}") from None
    return plain.decode()


def decrypt_secret(key: MasterKey, name: str, path: str, ciphertext: str) -> str:
    """Open a base64 ``ciphertext`` value (ValueError saying why it does not open)."""
    return decrypt_payload(key, name, path, open_envelope(go_base64_decode(ciphertext)))
