"""The local store and its keys: sealed secrets, authenticated files, revisions, locks, rotation."""

from __future__ import annotations

import base64
import hashlib
import multiprocessing
import os
import stat
import sys
import threading
from pathlib import Path
from typing import Any

import keyring
import keyring.backend
import keyring.core
import pytest
import yaml
from pyrage import x25519

from sophia.errors import DependencyMissing
from sophia.secrets import esc
from sophia.secrets.backend import ConflictError, EnvironmentError_, NotFoundError, TamperedError
from sophia.secrets.esc_syntax import parse_definition
from sophia.secrets.esc_value import go_base64_decode, open_envelope
from sophia.secrets.keys import (
    ENV_VAR,
    KeyPermissionError,
    KeyUnavailable,
    MasterKey,
    generate,
    init_key,
    key_file_path,
    load_key,
    seal_file,
)
from sophia.secrets.store import LocalStore, WrongKeyError

BASE = "values:\n  db:\n    host: db.internal\n    password:\n      fn::secret: fake-password-one\n"
APP = """\
imports: [base]
values:
  url: postgres://app:${db.password}@${db.host}/app
  plain: visible
  environmentVariables:
    DATABASE_URL: ${url}
    PLAIN: ${plain}
  files:
    PGPASS: ${db.password}
"""


@pytest.fixture
def key() -> MasterKey:
    return generate()


@pytest.fixture
def store(tmp_path: Path, key: MasterKey) -> LocalStore:
    return LocalStore(tmp_path / "store", key)


def ciphertext_at(store: LocalStore, name: str, *path: str) -> str:
    node: Any = store.get_definition_tree(name)["values"]
    for p in path:
        node = node[p]
    return str(node["fn::secret"]["ciphertext"])


# --- round trips -------------------------------------------------------------------------------


def test_secrets_are_stored_sealed_and_open_with_imports(store: LocalStore) -> None:
    assert store.put("base", BASE) == 1
    assert store.put("app", APP) == 1
    raw = store.file("base").read_bytes()
    assert b"fake-password-one" not in raw
    assert "fake-password-one" not in store.definition("base")
    payload = open_envelope(go_base64_decode(ciphertext_at(store, "base", "db", "password")))
    assert payload[1:9].hex() == store.key.key_id  # the key id travels with every ciphertext

    opened = store.open("app")
    assert opened.revision == 1
    assert opened.values["url"] == "postgres://app:fake-password-one@db.internal/app"
    assert opened.redacted["db"] == {"host": "db.internal", "password": "[secret]"}
    assert opened.redacted["url"] == "[secret]" and opened.redacted["plain"] == "visible"
    assert opened.environment_variables == {
        "DATABASE_URL": "postgres://app:fake-password-one@db.internal/app",
        "PLAIN": "visible",
    }
    assert opened.files == {"PGPASS": "fake-password-one"}
    assert set(opened.secrets) == {"fake-password-one", "postgres://app:fake-password-one@db.internal/app"}
    assert opened.diags == []


def test_the_file_stays_a_readable_esc_definition(store: LocalStore) -> None:
    store.put("base", BASE)
    text = store.file("base").read_text()
    doc = yaml.safe_load(text)  # the integrity block is YAML comments
    assert doc["values"]["db"]["host"] == "db.internal"
    assert set(doc["values"]["db"]["password"]["fn::secret"]) == {"ciphertext"}
    assert parse_definition(text).diags == []
    tail = text.splitlines()[-3:]
    assert [line.split(" ")[1] for line in tail] == ["sophia-store", "sophia-mac", "sophia-sum"]


def test_yaml_12_scalars_survive_the_rewrite(store: LocalStore) -> None:
    store.put("e", "values:\n  a: 'yes'\n  b: '1e3'\n  c: 1e3\n  d: 2024-01-01\n  e: 'null'\n  f: on\n")
    assert store.open("e").values == {
        "a": "yes",
        "b": "1e3",
        "c": 1000.0,
        "d": "2024-01-01",
        "e": "null",
        "f": "on",
    }


def test_an_existing_ciphertext_is_kept_when_written_back_at_its_own_path(store: LocalStore) -> None:
    store.put("base", BASE)
    before = ciphertext_at(store, "base", "db", "password")
    assert store.put("base", store.definition("base") + "  extra: 1\n", expected_revision=1) == 2
    assert ciphertext_at(store, "base", "db", "password") == before
    assert store.open("base").values == {
        "db": {"host": "db.internal", "password": "fake-password-one"},
        "extra": 1,
    }


def test_secret_values_must_be_strings_as_in_esc(store: LocalStore) -> None:
    with pytest.raises(EnvironmentError_, match="secret values must be string literals"):
        store.put("e", "values:\n  n:\n    fn::secret: 42\n")
    with pytest.raises(EnvironmentError_, match="environment must be an object"):
        store.put("e", "- a list\n")
    with pytest.raises(EnvironmentError_, match="environment e"):
        store.put("e", "values: [unclosed\n")
    assert store.names() == []


def test_secrets_inside_builtins_and_lists_are_sealed_too(store: LocalStore) -> None:
    text = "values:\n  j:\n    fn::toJSON:\n      k:\n        fn::secret: fake-in-json\n  l:\n    - fn::secret: fake-in-list\n"
    store.put("e", text)
    assert b"fake-in" not in store.file("e").read_bytes()
    opened = store.open("e")
    assert opened.values == {"j": '{"k":"fake-in-json"}', "l": ["fake-in-list"]}
    assert {"fake-in-json", "fake-in-list"} <= set(opened.secrets)


# --- names, revisions, conflicts ---------------------------------------------------------------


def test_names_allow_one_project_level_and_nothing_that_escapes_the_root(store: LocalStore) -> None:
    store.put("b-env", "values: {}\n")
    store.put("proj/prod.v2", "values: {}\n")
    assert store.names() == ["b-env", "proj/prod.v2"]
    assert store.file("proj/prod.v2") == store.root / "proj" / "prod.v2.yaml"
    for bad in ("a/b/c", "../x", ".hidden", "", "a/", "/abs", "a b", "proj/../x"):
        with pytest.raises(EnvironmentError_, match="invalid environment name"):
            store.put(bad, "values: {}\n")


def test_revisions_grow_and_expected_revision_is_enforced(store: LocalStore) -> None:
    assert store.put("e", "values: {a: 1}\n", expected_revision=0) == 1
    with pytest.raises(ConflictError, match="is at revision 1, not revision 0"):
        store.put("e", "values: {a: 2}\n", expected_revision=0)
    with pytest.raises(ConflictError, match="is at revision 1, not revision 5"):
        store.put("e", "values: {a: 2}\n", expected_revision=5)
    assert store.put("e", "values: {a: 2}\n", expected_revision=1) == 2
    assert store.put("e", "values: {a: 3}\n") == 3
    assert store.revision("e") == 3 and store.open("e").values == {"a": 3}
    with pytest.raises(ConflictError, match="does not exist"):
        store.put("new", "values: {}\n", expected_revision=2)


def test_missing_environments(store: LocalStore) -> None:
    for call in (store.definition, store.revision, store.open, store.delete):
        with pytest.raises(NotFoundError, match="environment nope not found"):
            call("nope")
    store.put("e", "imports: [nope]\nvalues: {a: 1}\n")
    opened = store.open("e")  # a missing import is ESC's diagnostic, not an exception
    assert opened.values == {"a": 1}
    assert [(d.summary, d.path) for d in opened.diags] == [("environment nope not found", "imports[0]")]


def test_delete_and_no_temporary_files_left(store: LocalStore) -> None:
    store.put("e", BASE)
    store.put("e", BASE)
    assert sorted(p.name for p in store.root.iterdir()) == [".lock", "e.yaml"]
    store.delete("e")
    assert store.names() == []


def test_threads_expecting_the_same_revision_only_one_wins(store: LocalStore) -> None:
    store.put("e", "values: {n: 0}\n")
    barrier = threading.Barrier(8)
    results: list[str] = []

    def write(i: int) -> None:
        barrier.wait()
        try:
            store.put("e", f"values: {{n: {i}}}\n", expected_revision=1)
            results.append("won")
        except ConflictError:
            results.append("conflict")

    threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["conflict"] * 7 + ["won"]
    assert store.revision("e") == 2


def test_concurrent_set_loses_no_update(store: LocalStore) -> None:
    threads = [threading.Thread(target=store.set, args=("e", f"k{i}", i)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.open("e").values == {f"k{i}": i for i in range(12)}
    assert store.revision("e") == 12


def _process_writer(root: str, raw: bytes, i: int, barrier: Any, out: Any) -> None:
    store = LocalStore(Path(root), MasterKey(raw))
    barrier.wait()
    try:
        store.put("e", f"values: {{writer: {i}}}\n", expected_revision=1)
        out.put("won")
    except ConflictError:
        out.put("conflict")


@pytest.mark.skipif(sys.platform != "linux", reason="fork start method")
def test_processes_expecting_the_same_revision_only_one_wins(store: LocalStore) -> None:
    store.put("e", "values: {writer: none}\n")
    ctx = multiprocessing.get_context("fork")
    barrier, out = ctx.Barrier(4), ctx.Queue()
    procs = [
        ctx.Process(target=_process_writer, args=(str(store.root), store.key.raw, i, barrier, out))
        for i in range(4)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=60)
    assert sorted(out.get(timeout=5) for _ in procs) == ["conflict"] * 3 + ["won"]
    assert store.revision("e") == 2


# --- integrity ---------------------------------------------------------------------------------


def test_a_wrong_key_is_named_not_called_tampering(store: LocalStore, tmp_path: Path) -> None:
    store.put("base", BASE)
    other = LocalStore(store.root, generate())
    with pytest.raises(WrongKeyError) as info:
        other.open("base")
    assert not isinstance(info.value, TamperedError)
    assert f"written with key {store.key.key_id}, the key in use is {other.key.key_id}" in str(info.value)


def test_a_ciphertext_moved_to_another_path_or_environment_does_not_open(store: LocalStore) -> None:
    store.put("base", BASE)
    moved = ciphertext_at(store, "base", "db", "password")
    other_path = f"values:\n  db:\n    user:\n      fn::secret:\n        ciphertext: {moved}\n"
    with pytest.raises(EnvironmentError_, match=r"does not belong at values\.db\.user of environment base"):
        store.put("base", other_path)
    same_path = f"values:\n  db:\n    password:\n      fn::secret:\n        ciphertext: {moved}\n"
    with pytest.raises(
        EnvironmentError_, match=r"does not belong at values\.db\.password of environment copy"
    ):
        store.put("copy", same_path)
    # a key holder writing the file by hand, MAC and all, still cannot move it
    store.file("copy").write_bytes(seal_file(store.key, "copy", same_path, 1))
    with pytest.raises(TamperedError, match=r"the secret at values\.db\.password does not open"):
        store.open("copy")


def test_a_ciphertext_from_another_store_names_its_key(store: LocalStore, tmp_path: Path) -> None:
    other = LocalStore(tmp_path / "other", generate())
    other.put("e", BASE)
    foreign = ciphertext_at(other, "e", "db", "password")
    with pytest.raises(EnvironmentError_, match=f"written with key {other.key.key_id}"):
        store.put("e", f"values:\n  db:\n    password:\n      fn::secret:\n        ciphertext: {foreign}\n")


def test_a_renamed_file_and_a_recomputed_checksum_are_tampering(store: LocalStore) -> None:
    store.put("base", BASE)
    data = store.file("base").read_bytes()
    store.file("prod").write_bytes(data)
    with pytest.raises(TamperedError, match="holds environment 'base', not 'prod'"):
        store.definition("prod")
    # an editor who fixes the plain checksum after a change is still caught by the MAC
    changed = data.replace(b"db.internal", b"db.evil.example")
    body, _, _ = changed[:-1].rpartition(b"\n")
    forged = body + b"\n# sophia-sum " + hashlib.sha256(body + b"\n").hexdigest().encode() + b"\n"
    store.file("base").write_bytes(forged)
    with pytest.raises(TamperedError, match="MAC mismatch"):
        store.open("base")
    with pytest.raises(TamperedError):
        store.put("base", BASE)  # never silently written over


def test_damage_in_an_import_fails_the_open_of_its_importer(store: LocalStore) -> None:
    store.put("base", BASE)
    store.put("app", APP)
    data = store.file("base").read_bytes()
    store.file("base").write_bytes(data.replace(b"db.internal", b"db.internaL"))
    with pytest.raises(TamperedError, match=str(store.file("base"))):
        store.open("app")


# --- editing by path ---------------------------------------------------------------------------


def test_set_and_unset_by_esc_property_path(store: LocalStore) -> None:
    assert store.set("e", "db.host", "h1") == 1
    assert store.set("e", 'a["x.y"][0].name', "first") == 2
    assert store.set("e", 'a["x.y"][1]', 2) == 3
    assert store.set("e", "db.password", "fake-set-secret", secret=True) == 4
    assert b"fake-set-secret" not in store.file("e").read_bytes()
    opened = store.open("e")
    assert opened.values == {
        "db": {"host": "h1", "password": "fake-set-secret"},
        "a": {"x.y": [{"name": "first"}, 2]},
    }
    assert opened.redacted["db"]["password"] == "[secret]"
    assert store.unset("e", 'a["x.y"][0]') == 5
    assert store.open("e").values["a"] == {"x.y": [2]}
    with pytest.raises(EnvironmentError_, match=r"no value at db\.port"):
        store.unset("e", "db.port")
    with pytest.raises(EnvironmentError_, match="builtin call"):
        store.set("e", "db.password.inner", "x")
    with pytest.raises(EnvironmentError_, match="index 5 is out of range"):
        store.set("e", 'a["x.y"][5]', 1)
    with pytest.raises(EnvironmentError_, match="invalid property path"):
        store.set("e", "a..b", 1)
    with pytest.raises(EnvironmentError_, match="secret values must be string literals"):
        store.set("e", "n", 1, secret=True)
    assert store.revision("e") == 5


def test_editing_a_list_reseals_the_secrets_it_shifts(store: LocalStore) -> None:
    store.put("e", "values:\n  l:\n    - plain\n    - fn::secret: fake-shifted\n")
    store.unset("e", "l[0]")
    assert store.open("e").values == {"l": ["fake-shifted"]}
    assert list(store.get_definition_tree("e")["values"]["l"][0]["fn::secret"]) == ["ciphertext"]
    assert b"fake-shifted" not in store.file("e").read_bytes()
    store.set("e", "l[0]", "fake-replaced", secret=True)
    store.set("e", "m", [1])
    assert store.open("e").values == {"l": ["fake-replaced"], "m": [1]}


# --- rotation ----------------------------------------------------------------------------------


def _rotating_store(root: Path, key: MasterKey) -> LocalStore:
    def rotate(inputs: esc.Value, state: esc.Value) -> esc.Value:
        current = state.v.get("current", esc.Value("fake-initial"))
        return esc.Value({"current": esc.Value(f"{current.v}-next", secret=True), "previous": current})

    return LocalStore(root, key, rotators={"pw": esc.Rotator(rotate)})


def test_rotation_writes_the_new_state_sealed_as_a_new_revision(tmp_path: Path, key: MasterKey) -> None:
    store = _rotating_store(tmp_path / "s", key)
    store.put(
        "e",
        "values:\n  cred:\n    fn::rotate::pw:\n      inputs: {}\n      state: {current: v1}\n  dsn: u:${cred.current}\n",
    )
    assert store.open("e").values["cred"] == {"current": "v1"}
    rotated = store.open("e", rotate=True)
    assert rotated.revision == 2
    assert rotated.values["cred"] == {"current": "v1-next", "previous": "v1"}
    assert b"v1-next" not in store.file("e").read_bytes()
    again = store.open("e")
    assert again.revision == 2 and again.values["dsn"] == "u:v1-next"
    assert again.redacted["cred"]["current"] == "[secret]" and again.redacted["dsn"] == "[secret]"
    assert "v1-next" in again.secrets
    twice = store.open("e", rotate=True)  # the old secret moved to "previous" stays sealed
    assert twice.values["cred"] == {"current": "v1-next-next", "previous": "v1-next"}
    assert b"v1-next" not in store.file("e").read_bytes()
    assert store.open("e").redacted["cred"] == {"current": "[secret]", "previous": "[secret]"}


# --- keys --------------------------------------------------------------------------------------


def test_key_file_is_private_and_refused_when_others_may_read_it(tmp_path: Path) -> None:
    config = tmp_path / "config"
    made = init_key(config)
    path = key_file_path(config)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(config.stat().st_mode) == 0o700
    assert load_key(config, environ={}).raw == made.raw
    assert load_key(config, environ={}).key_id == made.key_id
    with pytest.raises(KeyUnavailable, match="already exists"):
        init_key(config)
    path.chmod(0o640)
    with pytest.raises(KeyPermissionError, match=r"permissions 0640 .* too open.*chmod 600"):
        load_key(config, environ={})
    with pytest.raises(KeyUnavailable, match="no secrets key file"):
        load_key(tmp_path / "elsewhere", environ={})


def test_the_environment_variable_overrides_every_source(tmp_path: Path) -> None:
    raw = bytes(range(32))
    env = {ENV_VAR: base64.b64encode(raw).decode()}
    assert load_key(tmp_path / "none", source="keyring", environ=env).raw == raw
    with pytest.raises(KeyUnavailable, match="32 bytes, got 3"):
        load_key(tmp_path, environ={ENV_VAR: base64.b64encode(b"abc").decode()})
    with pytest.raises(KeyUnavailable, match="not valid base64"):
        load_key(tmp_path, environ={ENV_VAR: "not base64!"})


def test_subkeys_are_separate_for_each_purpose() -> None:
    k = MasterKey(bytes(32))
    assert len({k.secret_key, k.mac_key, k.backup_key, k.raw}) == 4
    assert k.subkey("x") == MasterKey(bytes(32)).subkey("x") != k.subkey("y")
    visible = MasterKey(bytes(range(32)), "test")
    assert repr(visible.raw) not in repr(visible) and "test" in repr(visible)


class MemoryKeyring(keyring.backend.KeyringBackend):
    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.items: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.items.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.items[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        del self.items[(service, username)]


@pytest.fixture
def memory_keyring(monkeypatch: pytest.MonkeyPatch) -> MemoryKeyring:
    monkeypatch.setattr(keyring.core, "_keyring_backend", keyring.core._keyring_backend)  # restored after
    fake = MemoryKeyring()
    keyring.set_keyring(fake)
    return fake


def test_keyring_round_trip(tmp_path: Path, memory_keyring: MemoryKeyring) -> None:
    made = init_key(tmp_path, source="keyring", store_id="team")
    assert list(memory_keyring.items) == [("sophia", "team")]
    assert load_key(tmp_path, source="keyring", store_id="team", environ={}).raw == made.raw
    with pytest.raises(KeyUnavailable, match="already holds"):
        init_key(tmp_path, source="keyring", store_id="team")
    with pytest.raises(KeyUnavailable, match="no secrets key for store 'other'"):
        load_key(tmp_path, source="keyring", store_id="other", environ={})


def test_age_round_trip(tmp_path: Path) -> None:
    identity = x25519.Identity.generate()
    id_file = tmp_path / "identity.txt"
    id_file.write_text(f"# created for the test\n{identity}\n")
    id_file.chmod(0o600)
    made = init_key(tmp_path / "cfg", source="age", recipients=[str(identity.to_public())])
    blob = (tmp_path / "cfg" / "secrets.key.age").read_bytes()
    assert base64.b64encode(made.raw) not in blob
    assert load_key(tmp_path / "cfg", source="age", identity=id_file, environ={}).raw == made.raw
    stranger = tmp_path / "stranger.txt"
    stranger.write_text(f"{x25519.Identity.generate()}\n")
    stranger.chmod(0o600)
    with pytest.raises(KeyUnavailable, match="could not be decrypted"):
        load_key(tmp_path / "cfg", source="age", identity=stranger, environ={})
    id_file.chmod(0o644)
    with pytest.raises(KeyPermissionError):
        load_key(tmp_path / "cfg", source="age", identity=id_file, environ={})
    with pytest.raises(KeyUnavailable, match="invalid age recipient"):
        init_key(tmp_path / "cfg2", source="age", recipients=["age1nope"])


@pytest.mark.parametrize(
    ("module", "extra", "source"), [("keyring", "keyring", "keyring"), ("pyrage", "age", "age")]
)
def test_optional_packages_missing_say_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, module: str, extra: str, source: Any
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # import now raises ImportError
    with pytest.raises(DependencyMissing, match=rf"pip install 'sophia\[{extra}\]'"):
        init_key(tmp_path, source=source, recipients=["age1x"])


def test_store_files_are_private(store: LocalStore) -> None:
    store.put("e", BASE)
    assert stat.S_IMODE(store.file("e").stat().st_mode) & 0o077 == 0
    assert os.access(store.file("e"), os.R_OK)
