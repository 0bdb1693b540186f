"""The local store: ESC environments in readable files, secrets sealed, every byte authenticated.

Each environment is one file, ``<root>/<name>.yaml`` (``<root>/<project>/<env>.yaml`` for a
``project/env`` name), that stays a valid, diffable ESC definition and may live in a repository::

    values:
      db:
        host: db.internal
        password:
          fn::secret:
            ciphertext: ZXNjeAAAAAEB…          <- ESC envelope; its payload is our AEAD blob
    # sophia-store {"format":1,"key":"…","name":"prod","revision":4,"updated":"…Z"}
    # sophia-mac <HMAC-SHA256 over the name and every byte above this line>
    # sophia-sum <SHA-256 over every byte above this line>

The sealing itself (the secret payload, the MAC and checksum, why a wrong key is told apart from
damage) is in ``keys``. Any changed, missing or added byte makes reading raise
:class:`TamperedError` before anything is decrypted. (Rolling a file back to an older authentic
version is not detectable here: the revision inside it is authentic too.)

Writes go to a temporary file, are fsynced and renamed over the old one; ``expected_revision`` is
checked under an ``flock`` on ``<root>/.lock/<name>.lock``, so of two writers only one can win.
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import json
import math
import os
import re
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from sophia.secrets import esc
from sophia.secrets.backend import (
    Backend,
    ConflictError,
    EnvironmentError_,
    NotFoundError,
    Opened,
    TamperedError,
)
from sophia.secrets.esc_syntax import Yaml12Loader, key_path, parse_access
from sophia.secrets.esc_value import Value, go_base64_decode, open_envelope, secret_texts
from sophia.secrets.keys import (
    MasterKey,
    Stored,
    WrongKeyError,
    decrypt_payload,
    decrypt_secret,
    encrypt_secret,
    open_file,
    seal_file,
)

__all__ = ["LocalStore", "Stored", "WrongKeyError", "dump_yaml", "load_yaml", "parse_path", "validate_name"]

_PART = r"[A-Za-z0-9][A-Za-z0-9_.-]*"
_NAME = re.compile(rf"{_PART}(?:/{_PART})?")


def validate_name(name: str) -> str:
    """``name`` or ``project/name``, each part ``[A-Za-z0-9][A-Za-z0-9_.-]*``: no path can escape the root."""
    if not isinstance(name, str) or len(name) > 200 or not _NAME.fullmatch(name):
        raise EnvironmentError_(
            f"invalid environment name {name!r}: use NAME or PROJECT/NAME, each part a letter or digit "
            "followed by letters, digits, '_', '.' or '-'"
        )
    return name


# --- YAML: ESC's YAML 1.2 reading, and a writer whose output reads back the same ---------------


_BaseLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_BaseDumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _Loader(_BaseLoader):
    """ESC's YAML 1.2 scalars (``yes`` and dates stay strings) on libyaml's parser when present."""


_Loader.yaml_implicit_resolvers = Yaml12Loader.yaml_implicit_resolvers


class _Dumper(_BaseDumper):
    """Quotes a string that YAML 1.1 *or* 1.2 would read as something else (``1e3``, ``yes``)."""


for _first, _resolvers in Yaml12Loader.yaml_implicit_resolvers.items():
    for _tag, _regexp in _resolvers:
        _Dumper.add_implicit_resolver(_tag, _regexp, [_first])


def load_yaml(text: str | bytes) -> Any:
    """Parse a definition the way ESC reads it (yaml.YAMLError on bad YAML)."""
    return yaml.load(text, Loader=_Loader)  # a SafeLoader subclass: no arbitrary objects


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def dump_yaml(doc: Any) -> str:
    """Block-style YAML in the document's key order; checked to read back to the same document."""
    if doc is None:
        return ""
    text = yaml.dump(doc, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=1 << 20)
    if not _same(load_yaml(text), doc):
        raise EnvironmentError_("the definition does not survive a YAML round trip (unsupported values)")
    return text


# --- secrets inside a definition -------------------------------------------------------------


@dataclass
class _Secret:
    """One ``fn::secret`` node: ``holder[slot]`` is the ``{fn::secret: arg}`` mapping."""

    path: str
    holder: Any
    slot: str | int
    arg: Any


def _secrets(node: Any, path: str = "") -> Iterator[_Secret]:
    """Every ``fn::secret`` node of a parsed definition (rotator states included), depth first, with
    ESC's path to it."""
    items: list[tuple[str | int, Any]]
    if isinstance(node, dict):
        items = [(str(k), v) for k, v in node.items()]
    elif isinstance(node, list):
        items = list(enumerate(node))
    else:
        return
    for slot, child in items:
        cpath = key_path(path, slot)
        if isinstance(child, dict) and len(child) == 1 and "fn::secret" in child:
            yield _Secret(cpath, node, slot, child["fn::secret"])
        else:
            yield from _secrets(child, cpath)


def _encode_state(v: Value, keep: frozenset[str], secret: bool = False) -> Any:
    """A rotated state as YAML data, every secret leaf written as ``fn::secret`` (sealed on write).

    A leaf equal to a secret of the stored definition (``keep``) stays secret even when the rotator
    did not flag it (one that rebuilds its state from plain data): an old password moved to
    ``previous`` must never be written out in clear.
    """
    secret = secret or v.secret
    if isinstance(v.v, list) and not v.unknown:
        return [_encode_state(i, keep, secret) for i in v.v]
    if isinstance(v.v, dict) and not v.unknown:
        return {k: _encode_state(i, keep, secret) for k, i in v.v.items()}
    if v.v is not None and (secret or (isinstance(v.v, str) and v.v in keep)):
        return {"fn::secret": v.v if isinstance(v.v, str) else json.dumps(v.v)}
    return v.v


def parse_path(path: str) -> list[str | int]:
    """An ESC property path (``a.b[0].c``, ``a["x.y"]``) relative to ``values``, as accessors."""
    consumed, accessors, errors = parse_access(path + "}")
    if errors or consumed != len(path) + 1 or not path:
        raise EnvironmentError_(f"invalid property path {path!r}: {'; '.join(errors) or 'unexpected text'}")
    if accessors[0] in ("imports", "context"):
        raise EnvironmentError_(f'"{accessors[0]}" is a reserved key')
    return accessors


def _step(node: Any, step: str | int, where: str) -> tuple[bool, Any]:
    """Whether ``node`` has ``step``, and the child there; EnvironmentError_ when it cannot have one."""
    if isinstance(node, dict) and len(node) == 1 and str(next(iter(node))).startswith("fn::"):
        raise EnvironmentError_(f"{where} is a builtin call ({next(iter(node))}): cannot edit inside it")
    if isinstance(step, str) and isinstance(node, dict):
        return step in node, node.get(step)
    if isinstance(step, int) and isinstance(node, list):
        return 0 <= step < len(node), node[step] if 0 <= step < len(node) else None
    raise EnvironmentError_(f"{where} is not {'an object' if isinstance(step, str) else 'a list'}")


def _assign(values: Any, accessors: list[str | int], value: Any) -> None:
    """Set ``values.<accessors>``, creating objects and lists on the way (an index may be one past the end)."""
    node, where = values, "values"
    for i, step in enumerate(accessors):
        found, child = _step(node, step, where)
        last = i == len(accessors) - 1
        if isinstance(step, int) and not found and step != len(node):
            raise EnvironmentError_(f"{where}: index {step} is out of range for a list of {len(node)}")
        if not found:
            child = value if last else [] if isinstance(accessors[i + 1], int) else {}
            if isinstance(step, int):
                node.append(child)
            else:
                node[step] = child
        elif last:
            node[step] = value
        node, where = child, key_path(where, step)


def _remove(values: Any, accessors: list[str | int]) -> bool:
    """Delete ``values.<accessors>``; False when there is nothing there."""
    node, where = values, "values"
    for step in accessors[:-1]:
        found, node = _step(node, step, where)
        if not found:
            return False
        where = key_path(where, step)
    found, _ = _step(node, accessors[-1], where)
    if found:
        del node[accessors[-1]]
    return found


# --- the store --------------------------------------------------------------------------------


class _Reading:
    """One ``open``: verified definitions and the plaintexts of their secrets, by payload."""

    def __init__(self, store: LocalStore, root: Stored) -> None:
        self.store, self.root = store, root
        self.cache: dict[str, Stored] = {root.name: root}
        self.plain: dict[bytes, str] = {}
        self.plaintexts: list[str] = []

    def prefetch(self) -> None:
        """Read and verify the whole import graph before evaluating: damage anywhere in it fails
        the open at once, and every file is read once per open (a consistent view)."""
        todo = [self.root]
        while todo:
            doc = load_yaml(todo.pop().body)
            imports = doc.get("imports") if isinstance(doc, dict) else None
            for item in imports if isinstance(imports, list) else []:
                name = next(iter(item), None) if isinstance(item, dict) else item
                if isinstance(name, str) and _NAME.fullmatch(name) and name not in self.cache:
                    with contextlib.suppress(NotFoundError):  # esc reports it, with the import's path
                        self.cache[name] = self.store.read(name)
                        todo.append(self.cache[name])

    def load(self, name: str) -> str:
        """esc's loader: a missing import is an ESC diagnostic (OSError), damage raises TamperedError."""
        if name not in self.cache:
            if not _NAME.fullmatch(name):
                raise OSError(f"invalid environment name {name!r}")
            try:
                self.cache[name] = self.store.read(name)
            except NotFoundError as exc:
                raise OSError(str(exc)) from None
        return self.unseal(self.cache[name])

    def unseal(self, stored: Stored) -> str:
        """The definition text for esc, every secret opened at its own path first (TamperedError if
        one does not: the MAC held, so only a key holder's hand edit gets here)."""
        doc = load_yaml(stored.body)  # parsed fine when written, and the MAC says it is unchanged
        for s in _secrets(doc):
            if not (isinstance(s.arg, dict) and isinstance(s.arg.get("ciphertext"), str)):
                continue
            try:
                payload = open_envelope(go_base64_decode(s.arg["ciphertext"]))
                text = decrypt_payload(self.store.key, stored.name, s.path, payload)
            except ValueError as exc:
                where = self.store.file(stored.name)
                raise TamperedError(f"{where}: the secret at {s.path} does not open: {exc}") from None
            self.plaintexts.append(text)
            self.plain[payload] = text
        return stored.body

    def decrypt(self, payload: bytes) -> bytes:
        """esc's decrypter: only payloads ``unseal`` opened at their own path are answered."""
        if payload not in self.plain:
            raise ValueError("the ciphertext was not written for this environment")
        return self.plain[payload].encode()


class LocalStore(Backend):
    """ESC environments as tamper-evident files under ``root``, sealed with ``key``.

    ``rotators`` are the ``fn::rotate::<name>`` implementations that ``open(..., rotate=...)`` runs;
    ``providers`` the ``fn::open::<name>`` ones (``sophia.secrets.providers``: Vault).
    """

    kind = "local"

    def __init__(
        self,
        root: Path,
        key: MasterKey,
        *,
        rotators: Mapping[str, esc.Rotator] | None = None,
        providers: Mapping[str, esc.Provider] | None = None,
    ) -> None:
        self.root = Path(root)
        self.key = key
        self.rotators: dict[str, esc.Rotator] = dict(rotators or {})
        self.providers: dict[str, esc.Provider] = dict(providers or {})

    # --- files and locks ----------------------------------------------------------------------

    def file(self, name: str) -> Path:
        """The file of environment ``name``."""
        return self.root / f"{validate_name(name)}.yaml"

    @contextlib.contextmanager
    def lock(self, name: str) -> Iterator[None]:
        """Hold the write lock of ``name`` (an ``flock``: exclusive across threads and processes)."""
        folder = self.root / ".lock"
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(
            folder / (validate_name(name).replace("/", "+") + ".lock"), os.O_RDWR | os.O_CREAT, 0o600
        )
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def write_file(self, name: str, data: bytes) -> None:
        """Replace the file of ``name`` atomically (temporary file, fsync, rename, fsync the folder)."""
        write_atomic(self.file(name), data)

    def read(self, name: str) -> Stored:
        """The verified file of ``name`` (NotFoundError, TamperedError, WrongKeyError)."""
        path = self.file(name)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise NotFoundError(f"environment {name} not found") from None
        return open_file(self.key, name, data, str(path))

    # --- Backend ------------------------------------------------------------------------------

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        found = [p.relative_to(self.root).as_posix()[: -len(".yaml")] for p in self.root.glob("*.yaml")]
        found += [p.relative_to(self.root).as_posix()[: -len(".yaml")] for p in self.root.glob("*/*.yaml")]
        return sorted(n for n in found if _NAME.fullmatch(n))

    def revision(self, name: str) -> int:
        return self.read(name).revision

    def definition(self, name: str) -> str:
        return self.read(name).body

    def get_definition_tree(self, name: str) -> dict[str, Any]:
        """The parsed definition of ``name`` (secrets as ``{ciphertext: …}``); ``{}`` when empty."""
        return load_yaml(self.read(name).body) or {}

    def put(self, name: str, yaml_text: str, *, expected_revision: int | None = None) -> int:
        validate_name(name)
        try:
            doc = load_yaml(yaml_text)
        except yaml.YAMLError as exc:
            raise EnvironmentError_(f"environment {name}: {exc}") from None
        if doc is not None and not isinstance(doc, dict):
            raise EnvironmentError_(f"environment {name}: environment must be an object")
        with self.lock(name):
            return self._write_locked(name, doc, expected_revision)

    def delete(self, name: str) -> None:
        with self.lock(name):
            try:
                self.file(name).unlink()
            except FileNotFoundError:
                raise NotFoundError(f"environment {name} not found") from None

    def open(self, name: str, *, rotate: bool | list[str] = False) -> Opened:
        validate_name(name)
        if rotate or isinstance(rotate, list):
            with self.lock(name):  # a rotation's new state must not be lost to a concurrent write
                return self._open(name, rotate)
        return self._open(name, False)

    # --- editing by property path ---------------------------------------------------------------

    def set(self, name: str, path: str, value: Any, *, secret: bool = False) -> int:
        """Set ``values.<path>`` of ``name`` (created when missing); returns the new revision.

        With ``secret`` the value is stored as an encrypted ``fn::secret`` (strings only, as in ESC).
        """
        accessors = parse_path(path)
        if secret and not isinstance(value, str):
            raise EnvironmentError_(f"{path}: secret values must be string literals")
        new = {"fn::secret": value} if secret else copy.deepcopy(value)
        with self.lock(name):
            doc, revision = self._doc_locked(name)
            before = self._paths(doc)
            _assign(doc.setdefault("values", {}), accessors, new)
            self._reseal_moved(name, doc, before)
            return self._write_locked(name, doc, revision)

    def unset(self, name: str, path: str) -> int:
        """Remove ``values.<path>`` of ``name``; returns the new revision."""
        accessors = parse_path(path)
        with self.lock(name):
            doc, revision = self._doc_locked(name)
            before = self._paths(doc)
            if "values" not in doc or not _remove(doc["values"], accessors):
                raise EnvironmentError_(f"environment {name}: no value at {path}")
            self._reseal_moved(name, doc, before)
            return self._write_locked(name, doc, revision)

    # --- internals ----------------------------------------------------------------------------

    @staticmethod
    def _paths(doc: Any) -> dict[int, tuple[Any, str]]:
        """Each secret node (by identity, kept alive so ids stay unique) and its path."""
        return {id(node): (node, s.path) for s in _secrets(doc) for node in [s.holder[s.slot]]}

    def _reseal_moved(self, name: str, doc: Any, before: dict[int, tuple[Any, str]]) -> None:
        """An edit by path may shift secrets (a list item removed before them): those are opened at
        their old path and sealed again at the new one, since a ciphertext only opens where it was made."""
        for s in _secrets(doc):
            node = s.holder[s.slot]
            old = before.get(id(node))
            if old is not None and old[1] != s.path and isinstance(s.arg, dict) and "ciphertext" in s.arg:
                node["fn::secret"] = decrypt_secret(self.key, name, old[1], s.arg["ciphertext"])

    def _doc_locked(self, name: str) -> tuple[dict[str, Any], int]:
        try:
            stored = self.read(name)
        except NotFoundError:
            return {}, 0
        return load_yaml(stored.body) or {}, stored.revision

    def _current_revision(self, name: str) -> int:
        try:
            return self.read(name).revision
        except NotFoundError:
            return 0

    def seal_secrets(self, name: str, doc: Any) -> Any:
        """A copy of ``doc`` with every plaintext ``fn::secret`` encrypted for its path; existing
        ciphertexts must open under this environment and path (EnvironmentError_ otherwise)."""
        doc = copy.deepcopy(doc)
        for s in _secrets(doc):
            if isinstance(s.arg, str):
                s.holder[s.slot] = {
                    "fn::secret": {"ciphertext": encrypt_secret(self.key, name, s.path, s.arg)}
                }
            elif (
                isinstance(s.arg, dict)
                and list(s.arg) == ["ciphertext"]
                and isinstance(s.arg["ciphertext"], str)
            ):
                try:
                    decrypt_secret(self.key, name, s.path, s.arg["ciphertext"])
                except ValueError as exc:
                    raise EnvironmentError_(
                        f"environment {name}: {s.path}: invalid ciphertext: {exc}"
                    ) from None
            else:
                raise EnvironmentError_(
                    f"environment {name}: {s.path}: secret values must be string literals"
                )
        return doc

    def _write_locked(self, name: str, doc: Any, expected: int | None) -> int:
        current = self._current_revision(name)
        if expected is not None and expected != current:
            state = f"is at revision {current}" if current else "does not exist"
            raise ConflictError(f"environment {name} {state}, not revision {expected}")
        body = dump_yaml(self.seal_secrets(name, doc))
        self.write_file(name, seal_file(self.key, name, body, current + 1))
        return current + 1

    def _open(self, name: str, rotate: bool | list[str]) -> Opened:
        root = self.read(name)
        reading = _Reading(self, root)
        reading.prefetch()
        captured: list[Value] = []

        def capturing(r: esc.Rotator) -> esc.Rotator:
            def run(inputs: Value, state: Value) -> Value:
                new = r.rotate(inputs, state)
                captured.append(new)
                return new

            return replace(r, rotate=run)

        result = esc.evaluate(
            name,
            reading.load,
            decrypt=reading.decrypt,
            providers=self.providers,
            rotators={k: capturing(r) for k, r in self.rotators.items()},
            rotate=rotate,
        )
        revision = root.revision
        if result.patches:
            revision = self._write_locked(
                name,
                self._patched(root, result.patches, captured, frozenset(reading.plaintexts)),
                root.revision,
            )
        found = secret_texts(result.value) if result.value is not None else []
        return Opened(
            name=name,
            revision=revision,
            values=result.values,
            redacted=result.redacted,
            secrets=[s for s in dict.fromkeys([*reading.plaintexts, *found]) if s],
            environment_variables=esc.environment_variables(result),
            files=esc.files(result),
            diags=list(result.diags),
        )

    def _patched(
        self, root: Stored, patches: list[esc.Patch], captured: list[Value], keep: frozenset[str]
    ) -> Any:
        """The root definition with each rotated state written at its ``…state`` node."""
        doc = load_yaml(root.body)
        unused = list(captured)
        for patch in patches:
            match = next((v for v in unused if v.reveal() == patch.state), None)
            if match is not None:
                unused.remove(match)
            state = _encode_state(match if match is not None else esc.from_plain(patch.state), keep)
            accessors = parse_access(patch.path + "}")[1]
            node: Any = doc
            for step in accessors[:-1]:
                node = node[step]
            node[accessors[-1]] = state
        return doc


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` or leave it as it was: a private temporary file beside it, fsynced,
    renamed over it, and the folder fsynced so that the rename itself survives a crash."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
