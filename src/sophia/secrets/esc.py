"""An offline evaluator of Pulumi ESC environments.

``evaluate(name, load)`` loads a definition, evaluates its ``imports`` (each as an environment of
its own, merged in order, later wins), then its ``values`` over them: ``${…}`` references walk the
expression tree (so a cycle is reported at the node it closes on, as ESC does), builtins run on
evaluated arguments, ``fn::open`` calls a provider. Every value carries ``secret`` and ``unknown``
flags; the redacted view prints ``[secret]`` for secrets and both views print ``[unknown]`` for
values an error left undetermined. Diagnostics keep ESC's summary texts and paths.

Providers and rotators are plain callables: a provider takes the evaluated inputs and returns a
:class:`Value` (raise ``ValueError`` with the message to fail); ``decrypt`` takes the payload of an
ESC ciphertext envelope and returns the plaintext bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from sophia.secrets.esc_builtins import FUNCTIONS
from sophia.secrets.esc_schema import Validator
from sophia.secrets.esc_syntax import (
    Builtin,
    Definition,
    Diag,
    Expr,
    Interpolate,
    ListExpr,
    Literal,
    ObjectExpr,
    Symbol,
    key_path,
    parse_access,
    parse_definition,
)
from sophia.secrets.esc_value import (
    Value,
    blocking_unknown,
    deep_secret,
    deep_unknown,
    from_plain,
    go_base64_decode,
    merge,
    open_envelope,
    to_string,
    unknown,
)

__all__ = ["Diag", "Result", "Value", "environment_variables", "evaluate", "files", "from_plain"]


@dataclass
class Result:
    """What :func:`evaluate` returns: the value tree, both JSON views, and the diagnostics."""

    value: Value | None
    diags: list[Diag] = field(default_factory=list)
    patches: list[Patch] = field(default_factory=list)

    @property
    def values(self) -> Any:
        return None if self.value is None else self.value.reveal()

    @property
    def redacted(self) -> Any:
        return None if self.value is None else self.value.redacted()


@dataclass(frozen=True)
class Provider:
    """An ``fn::open`` provider: ``open(inputs)`` returns the value; ``inputs`` is a JSON schema."""

    open: Callable[[Value], Value]
    inputs: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Rotator:
    """An ``fn::rotate`` rotator: ``rotate(inputs, state)`` returns the new state.

    ``state`` and ``inputs`` are JSON schemas; evaluation without rotating yields the state.
    """

    rotate: Callable[[Value, Value], Value]
    state: Mapping[str, Any] | None = None
    inputs: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Patch:
    """A rotated state to write back: ``path`` is the ``…state`` node of the definition."""

    path: str
    state: Any


Loader = Callable[[str], "bytes | str"]


class _Env:
    """The evaluation of one environment (the root or one import)."""

    def __init__(self, name: str, root_name: str, ev: _Evaluator, stack: tuple[str, ...]) -> None:
        self.name, self.ev, self.stack = name, ev, stack
        self.root_name = root_name
        self.imports: dict[str, Value] = {}
        self.base: Value | None = None
        self.defn: Definition | None = None

    def error(self, summary: str, path: str) -> None:
        self.ev.diags.append(Diag(summary, path, self.name))

    def run(self, report: Callable[[str], None] | None = None) -> Value | None:
        """Evaluate; a definition that cannot be loaded is reported through ``report``."""
        try:
            text = self.ev.load(self.name)
        except (OSError, KeyError, ValueError) as exc:
            if report is None:
                self.error(str(exc), "")
            else:
                report(str(exc))
            return None
        defn = self.defn = parse_definition(text)
        for d in defn.diags:
            self.ev.diags.append(Diag(d.summary, d.path, self.name))
        if defn.empty:
            return None
        base: Value | None = None
        for i, (name, do_merge) in enumerate(defn.imports):
            imported = self.ev.open_env(name, self.stack, self._reporter(f"imports[{i}]"))
            if imported is None:
                continue
            self.imports[name] = imported
            if do_merge:
                base = imported if base is None else merge(base, imported)
        self.base = base
        assert defn.values is not None
        _attach_base(defn.values, base)
        return self.eval(defn.values)

    def _reporter(self, path: str) -> Callable[[str], None]:
        return lambda summary: self.error(summary, path)

    # --- evaluation ----------------------------------------------------------------------------

    def eval(self, x: Expr) -> Value:
        if x.state == 2:
            assert isinstance(x.value, Value)
            return x.value
        if x.state == 1:
            self.error(f"cyclic reference to {x.prop}", x.path)
            return unknown()
        x.state = 1
        value = self._eval(x)
        if x.base is not None and not isinstance(x, ObjectExpr):
            value = merge(x.base, value)
        x.state, x.value = 2, value
        return value

    def _eval(self, x: Expr) -> Value:
        if isinstance(x, Literal):
            return Value(x.literal)
        if isinstance(x, Symbol):
            return self.resolve(x, x.access)
        if isinstance(x, Interpolate):
            return self.interpolate(x)
        if isinstance(x, ListExpr):
            return Value([self.eval(i) for i in x.items])
        if isinstance(x, ObjectExpr):
            return self.object(x)
        assert isinstance(x, Builtin)
        return self.ev.builtin(self, x)

    def object(self, x: ObjectExpr) -> Value:
        base: Value | None = x.base
        out: dict[str, Value] = dict(base.v) if base is not None else {}
        for k, child in sorted(x.entries.items()):  # ESC's order, so cycles are reported where it does
            under = out.get(k)
            if under is not None and under.final:
                self.error("cannot override final value", child.path)
                continue
            out[k] = self.eval(child)
        return Value(out, own=tuple(x.entries) if base is not None else None)

    def interpolate(self, x: Interpolate) -> Value:
        out: list[str] = []
        secret = missing = False
        rotate_only = True
        for part in x.parts:
            if isinstance(part, str):
                out.append(part)
                continue
            v = self.resolve(x, part)
            secret = secret or deep_secret(v)
            if deep_unknown(v):
                missing = True
                rotate_only = rotate_only and not blocking_unknown(v)
                continue
            out.append(to_string(v))
        if missing:
            return Value(None, secret=secret, unknown=True, rotate_only=rotate_only)
        return Value("".join(out), secret=secret)

    # --- references ----------------------------------------------------------------------------

    def resolve(self, at: Expr, access: list[str | int]) -> Value:
        head = access[0]
        if head == "context" and len(access) >= 1:
            return self.walk_value(at, self.ev.context_value(self.name, self.root_name), access, 1)
        if head == "imports" and len(access) >= 2 and isinstance(access[1], str):
            imported = self.imports.get(access[1])
            if imported is None:
                self.error(f'unknown import "{access[1]}"', at.path)
                return unknown()
            return self.walk_value(at, imported, access, 2)
        if head == "environments" and len(access) >= 3:
            if at.rotate_only and not (self.ev.rotating and len(self.stack) == 1):
                return Value(None, unknown=True, rotate_only=True)  # resolved only when rotating
            name = f"{access[1]}/{access[2]}"
            inline = self.ev.open_env(name, self.stack, lambda s: self.error(s, at.path))
            if inline is None:
                return unknown()
            return self.walk_value(at, inline, access, 3)
        assert self.defn is not None and self.defn.values is not None
        node: Expr = self.defn.values
        for i, key in enumerate(access):
            if isinstance(node, ObjectExpr):
                if isinstance(key, int):
                    self.error("cannot access an object property using an integer index", at.path)
                    return unknown()
                if key in node.entries:
                    child = node.entries[key]
                    under = node.base.v.get(key) if node.base is not None else None
                    if under is not None and under.final:
                        return self.walk_value(at, under, access, i + 1)
                    node = child
                    continue
                if node.base is not None and key in node.base.v:
                    return self.walk_value(at, node.base.v[key], access, i + 1)
                keys = list(node.entries) + (list(node.base.v) if node.base is not None else [])
                self.error(_unknown_property(key, keys), at.path)
                return unknown()
            if isinstance(node, ListExpr) and isinstance(key, int) and 0 <= key < len(node.items):
                node = node.items[key]
                continue
            return self.walk_value(at, self.eval(node), access, i)
        return self.eval(node)

    def walk_value(self, at: Expr, v: Value, access: list[str | int], start: int) -> Value:
        secret = v.secret
        for key in access[start:]:
            if v.unknown:
                return unknown(secret)
            if isinstance(v.v, dict):
                if isinstance(key, int):
                    self.error("cannot access an object property using an integer index", at.path)
                    return unknown()
                if key not in v.v:
                    self.error(_unknown_property(key, list(v.v)), at.path)
                    return unknown()
                v = v.v[key]
            elif isinstance(v.v, list):
                if isinstance(key, str):
                    self.error("cannot access an array element using a property name", at.path)
                    return unknown()
                if key < 0:
                    self.error("array indices must not be negative", at.path)
                    return unknown()
                if key >= len(v.v):
                    self.error(f"array index {key} out-of-bounds for array of length {len(v.v)}", at.path)
                    return unknown()
                v = v.v[key]
            else:
                self.error("receiver must be an array or an object", at.path)
                return unknown()
            secret = secret or v.secret
        if secret and not v.secret:
            return replace(v, secret=True)
        return v


def _attach_base(x: Expr, base: Value | None) -> None:
    if base is None:
        return
    if not isinstance(x, ObjectExpr):
        x.base = base if base.is_object() else None
    elif base.is_object():
        x.base = base
        for k, child in x.entries.items():
            _attach_base(child, base.v.get(k))


def _levenshtein(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def _unknown_property(key: str, candidates: list[str]) -> str:
    msg = f'unknown property "{key}"'
    scored = sorted((_levenshtein(key, c), c) for c in set(candidates))
    if scored and key and scored[0][0] <= len(key) // 2:
        msg += f'; did you mean "{scored[0][1]}"?'
    return msg


class _Evaluator:
    def __init__(
        self,
        load: Loader,
        providers: Mapping[str, Provider | Callable[[Value], Value]],
        decrypt: Callable[[bytes], bytes] | None,
        context: Mapping[str, Any],
        rotators: Mapping[str, Rotator],
        rotate: bool | list[str],
    ) -> None:
        self.load, self.decrypt = load, decrypt
        self.providers = {k: p if isinstance(p, Provider) else Provider(p) for k, p in providers.items()}
        self.context, self.rotators = context, rotators
        self.rotate_paths: list[list[str | int]] | None = None
        if isinstance(rotate, list):
            self.rotate_paths = [parse_access(p + "}")[1] for p in rotate]
        self.rotating = bool(rotate) or isinstance(rotate, list)
        self.diags: list[Diag] = []
        self.patches: list[Patch] = []
        self.done: dict[str, Value | None] = {}

    def context_value(self, current: str, root: str) -> Value:
        ctx = dict(self.context)
        ctx["currentEnvironment"] = {"name": current}
        ctx["rootEnvironment"] = {"name": root}
        return from_plain(ctx)

    def open_env(self, name: str, stack: tuple[str, ...], report: Callable[[str], None]) -> Value | None:
        """Evaluate an imported environment, once per evaluation; a cycle is reported, not followed."""
        if name in stack:
            report(f"cyclic import of {name}")
            return None
        if name not in self.done:
            self.done[name] = _Env(name, name, self, (*stack, name)).run(report)
        return self.done[name]

    # --- builtins ------------------------------------------------------------------------------

    def builtin(self, env: _Env, x: Builtin) -> Value:
        name = x.name
        if name == "fn::secret":
            return self.secret(env, x)
        if name.startswith("fn::rotate::"):
            return self.rotate(env, x)
        if x.arg is None:
            return unknown()
        if name == "fn::final":
            v = env.eval(x.arg)
            return replace(v, final=True)
        if name == "fn::open" or name.startswith("fn::open::"):
            return self.open(env, x)
        fn = FUNCTIONS.get(name)
        if fn is None:
            env.error(f'unknown builtin function "{name}"', x.path)
            return unknown()
        return fn(env, x)

    def secret(self, env: _Env, x: Builtin) -> Value:
        raw = x.raw
        if isinstance(raw, str):
            return Value(raw, secret=True)
        if isinstance(raw, dict) and isinstance(raw.get("ciphertext"), str):
            try:
                payload = open_envelope(go_base64_decode(raw["ciphertext"]))
            except ValueError as exc:
                env.error(f"invalid ciphertext: {exc}", x.path)
                return unknown(secret=True)
            try:
                if self.decrypt is None:
                    raise ValueError("no decrypter configured")
                return Value(self.decrypt(payload).decode(), secret=True)
            except ValueError as exc:  # UnicodeDecodeError included
                env.error(f"decrypting: {exc}", x.path)
                return unknown(secret=True)
        return Value("", secret=True)

    def _literal(self, env: _Env, raw: Any, path: str) -> Value:
        """A literal (a rotator's state) as a Value: ``fn::secret`` leaves (plaintext or ciphertext, as
        a store writes rotated credentials back) become secret values."""
        if isinstance(raw, dict) and len(raw) == 1 and "fn::secret" in raw:
            return self.secret(
                env, Builtin(path, "", name="fn::secret", arg_path=path, raw=raw["fn::secret"])
            )
        if isinstance(raw, dict):
            return Value({k: self._literal(env, v, key_path(path, k)) for k, v in raw.items()})
        if isinstance(raw, list):
            return Value([self._literal(env, v, key_path(path, i)) for i, v in enumerate(raw)])
        return Value(raw)

    def rotate(self, env: _Env, x: Builtin) -> Value:
        rotator = self.rotators.get(x.name[len("fn::rotate::") :])
        if rotator is None:
            env.error(f'unknown rotator "{x.name[len("fn::rotate::") :]}"', x.path)
            return unknown()
        raw_state = x.raw.get("state") if isinstance(x.raw, dict) else None
        state_path = key_path(x.arg_path, "state")
        literal_state = self._literal(env, raw_state, state_path) if raw_state is not None else None
        if literal_state is not None:
            raw_state = literal_state.reveal()
        ok = True
        if rotator.state is not None:  # as ESC does, a missing state (null) is always accepted
            schema = {"oneOf": [dict(rotator.state), {"type": "null"}]}
            for summary, path in Validator(schema).errors(raw_state, schema, state_path, key_path):
                env.error(summary, path)
                ok = False
        inputs = env.eval(x.arg) if x.arg is not None else Value({})
        if rotator.inputs is not None and not deep_unknown(inputs):
            schema = dict(rotator.inputs)
            for summary, path in Validator(schema).errors(inputs.reveal(), schema, x.arg_path, key_path):
                env.error(summary, path)
                ok = False
        if not ok or blocking_unknown(inputs):
            return unknown()
        state = literal_state if literal_state is not None else from_plain({})
        if not (self.rotating and len(env.stack) == 1 and self._selected(x)):
            return state
        try:
            new = rotator.rotate(inputs, state)
        except ValueError as exc:
            env.error(f"rotate: {exc}", x.path)
            return unknown()
        self.patches.append(Patch(state_path, new.reveal()))
        return new

    def _selected(self, x: Builtin) -> bool:
        if self.rotate_paths is None:
            return True
        return parse_access(x.prop + "}")[1] in self.rotate_paths

    def open(self, env: _Env, x: Builtin) -> Value:
        assert x.arg is not None
        if x.name == "fn::open":
            spec = env.eval(x.arg)
            if spec.unknown or not spec.is_object() or not isinstance(spec.v.get("provider", Value()).v, str):
                env.error("the argument to fn::open must be an object with a provider name", x.arg_path)
                return unknown()
            provider_name = spec.v["provider"].v
            inputs = spec.v.get("inputs", Value({}))
        else:
            provider_name = x.name[len("fn::open::") :]
            inputs = env.eval(x.arg)
        provider = self.providers.get(provider_name)
        if provider is None:
            env.error(f'unknown provider "{provider_name}"', x.path)
            return unknown()
        if deep_unknown(inputs):
            return unknown()
        if provider.inputs is not None:
            schema = dict(provider.inputs)
            errors = Validator(schema).errors(inputs.reveal(), schema, x.arg_path, key_path)
            if errors:
                for summary, path in errors:
                    env.error(summary, path)
                return unknown()
        try:
            return provider.open(inputs)
        except ValueError as exc:
            env.error(str(exc), x.path)
            return unknown()


def evaluate(
    name: str,
    load: Loader,
    *,
    providers: Mapping[str, Provider | Callable[[Value], Value]] | None = None,
    decrypt: Callable[[bytes], bytes] | None = None,
    context: Mapping[str, Any] | None = None,
    rotators: Mapping[str, Rotator] | None = None,
    rotate: bool | list[str] = False,
) -> Result:
    """Evaluate the environment ``name``; ``load`` returns the YAML of an environment by name.

    With ``rotate`` (True, or a list of property paths such as ``a.b[0]``), the root's
    ``fn::rotate`` calls run their rotator and the new states are returned as patches.
    """
    ev = _Evaluator(load, providers or {}, decrypt, context or {}, rotators or {}, rotate)
    value = _Env(name, name, ev, (name,)).run()
    return Result(value, ev.diags, sorted(ev.patches, key=lambda p: p.path))


def environment_variables(result: Result) -> dict[str, str]:
    """The reserved ``environmentVariables`` output as strings (secrets revealed)."""
    return _string_map(result, "environmentVariables")


def files(result: Result) -> dict[str, str]:
    """The reserved ``files`` output: file name to content (secrets revealed)."""
    return _string_map(result, "files")


def _string_map(result: Result, key: str) -> dict[str, str]:
    if result.value is None or not result.value.is_object() or key not in result.value.v:
        return {}
    section = result.value.v[key]
    if not section.is_object():
        return {}
    return {k: to_string(v) for k, v in section.v.items() if not v.unknown}
