"""Pulumi ESC definitions parsed into expression trees.

A definition is YAML with ``imports`` and ``values``. Every node of ``values`` becomes an
:class:`Expr`; strings holding ``${…}`` become references or interpolations, single-key mappings
``fn::name: arg`` become builtin calls. Load errors (ESC calls them load diagnostics) are
collected, never raised: evaluation goes on with what could be parsed, as ESC does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

_IDENT = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]*$")


@dataclass(frozen=True)
class Diag:
    """One error: ESC's summary text and the path of the node it is about."""

    summary: str
    path: str
    environment: str = ""


def key_path(parent: str, key: str | int) -> str:
    """Append one accessor to a path the way ESC prints it (``a.b``, ``a["x-y"]``, ``a[0]``)."""
    if isinstance(key, int):
        return f"{parent}[{key}]"
    if _IDENT.match(key):
        return f"{parent}.{key}" if parent else key
    return parent + '["' + key.replace('"', '\\"') + '"]'


# --- property access: ${a.b["c"][0]} ---------------------------------------------------------


def _terminates(c: str) -> bool:
    return c in ".[}" or c.isspace()


class _AccessParser:
    def __init__(self, text: str) -> None:
        self.text, self.pos = text, 0
        self.accessors: list[str | int] = []
        self.errors: list[str] = []

    def peek(self) -> str | None:
        return self.text[self.pos] if self.pos < len(self.text) else None

    def parse(self) -> tuple[int, list[str | int]]:
        while True:
            c = self.peek()
            if c is None or c.isspace():
                self.errors.append("missing closing brace '}' in interpolation")
                break
            if c == "}":
                self.pos += 1
                break
            if c == ".":
                self.pos += 1
                self.accessors.append(self.name())
            elif c == "[":
                self.pos += 1
                self.accessors.append(self.subscript())
            else:
                self.accessors.append(self.name())
        if not self.accessors:
            self.accessors.append("")
        return self.pos, self.accessors

    def name(self) -> str:
        start = self.pos
        while (c := self.peek()) is not None and not _terminates(c):
            self.pos += 1
        if self.pos == start:
            self.errors.append("property name must not be empty")
        return self.text[start : self.pos]

    def subscript(self) -> str | int:
        c = self.peek()
        if c is None:
            self.errors.append("subscript is missing closing bracket ']'")
            return ""
        index: str | int
        if c == '"':
            self.pos += 1
            index = self.string_subscript()
        else:
            index = self.index_subscript()
        if self.peek() != "]":
            self.errors.append("subscript is missing closing bracket ']'")
        else:
            self.pos += 1
        return index

    def string_subscript(self) -> str:
        out: list[str] = []
        while True:
            c = self.peek()
            if c is None:
                self.errors.append("key subscript is missing closing quote '\"'")
                return "".join(out)
            self.pos += 1
            if c == '"':
                if not out:
                    self.errors.append("key subscript must not be empty")
                return "".join(out)
            if c == "\\" and self.peek() == '"':
                self.pos += 1
                c = '"'
            out.append(c)

    def index_subscript(self) -> str | int:
        start = self.pos
        while (c := self.peek()) is not None and c != "]" and not _terminates(c):
            self.pos += 1
        raw = self.text[start : self.pos]
        if not re.fullmatch(r"[+-]?[0-9]+", raw):
            self.errors.append("numeric subscript must be a positive base-10 integer")
            return raw
        if not self.accessors:
            self.errors.append(
                "the first accessor must be a property name or key subscript, not a numeric subscript"
            )
        return int(raw)


def parse_access(text: str) -> tuple[int, list[str | int], list[str]]:
    """Parse the accessors after ``${``; returns (characters consumed, accessors, errors)."""
    parser = _AccessParser(text)
    consumed, accessors = parser.parse()
    return consumed, accessors, parser.errors


def access_text(accessors: list[str | int]) -> str:
    out = ""
    for a in accessors:
        out = key_path(out, a)
    return out


# --- expressions ------------------------------------------------------------------------------


@dataclass(eq=False)
class Expr:
    """A node of ``values``. ``path`` is its diagnostic path, ``prop`` its property path."""

    path: str
    prop: str
    state: int = 0  # 0 new, 1 evaluating, 2 done
    value: Any = None  # the evaluated Value (esc.Value), set once done
    base: Any = None  # the imported Value this node merges over, if any
    rotate_only: bool = False  # inside fn::rotate inputs: ${environments…} resolve only when rotating


@dataclass(eq=False)
class Literal(Expr):
    literal: Any = None


@dataclass(eq=False)
class Interpolate(Expr):
    """A string with references; ``parts`` alternate text and accessor lists."""

    parts: list[str | list[str | int]] = field(default_factory=list)


@dataclass(eq=False)
class Symbol(Expr):
    """A string that is exactly one ``${…}``: its value keeps its type."""

    access: list[str | int] = field(default_factory=list)


@dataclass(eq=False)
class ListExpr(Expr):
    items: list[Expr] = field(default_factory=list)


@dataclass(eq=False)
class ObjectExpr(Expr):
    entries: dict[str, Expr] = field(default_factory=dict)


@dataclass(eq=False)
class Builtin(Expr):
    name: str = ""
    arg: Expr | None = None
    arg_path: str = ""
    raw: Any = None  # the YAML of the argument, for builtins that read literals


@dataclass
class Definition:
    """One parsed environment."""

    imports: list[tuple[str, bool]]  # (name, merge)
    values: ObjectExpr | None
    empty: bool
    diags: list[Diag]


_ONE_ARG_LIST = {"fn::join": 2, "fn::split": 2}


class _Builder:
    def __init__(self) -> None:
        self.diags: list[Diag] = []
        self.in_rotate = False

    def error(self, summary: str, path: str) -> None:
        self.diags.append(Diag(summary, path))

    def build(self, node: Any, path: str, prop: str) -> Expr:
        x = self._build(node, path, prop)
        x.rotate_only = self.in_rotate
        return x

    def _build(self, node: Any, path: str, prop: str) -> Expr:
        if isinstance(node, dict):
            if len(node) == 1:
                (k,) = node
                if isinstance(k, str) and k.startswith("fn::"):
                    return self.builtin(k, node[k], path, prop)
            obj = ObjectExpr(path, prop)
            for k, v in node.items():
                key = _key_str(k)
                kpath = key_path(path, key)
                if "${" in key:
                    self.error("object keys must be strings", kpath)
                    continue
                obj.entries[key] = self.build(v, kpath, key_path(prop, key))
            return obj
        if isinstance(node, list):
            lst = ListExpr(path, prop)
            lst.items = [self.build(v, key_path(path, i), key_path(prop, i)) for i, v in enumerate(node)]
            return lst
        if isinstance(node, str) and "${" in node:
            return self.string(node, path, prop)
        if isinstance(node, str):
            node = node.replace("$${", "${")
        return Literal(path, prop, literal=node)

    def string(self, text: str, path: str, prop: str) -> Expr:
        parts: list[str | list[str | int]] = []
        buf: list[str] = []
        i = 0
        while i < len(text):
            if text.startswith("$${", i):
                buf.append("${")
                i += 3
            elif text.startswith("${", i):
                if buf:
                    parts.append("".join(buf))
                    buf = []
                consumed, accessors, errors = parse_access(text[i + 2 :])
                for e in errors:
                    self.error(e, path)
                parts.append(accessors)
                i += 2 + consumed
            else:
                buf.append(text[i])
                i += 1
        if buf:
            parts.append("".join(buf))
        if len(parts) == 1 and isinstance(parts[0], list):
            return Symbol(path, prop, access=parts[0])
        return Interpolate(path, prop, parts=parts)

    def builtin(self, name: str, arg: Any, path: str, prop: str) -> Expr:
        arg_path = key_path(path, name)
        call = Builtin(path, prop, name=name, arg_path=arg_path, raw=arg)
        if name == "fn::secret":
            if isinstance(arg, dict) and list(arg) == ["ciphertext"] and isinstance(arg["ciphertext"], str):
                return call
            if not isinstance(arg, str):
                self.error("secret values must be string literals", arg_path)
                call.raw = None
            return call
        if name.startswith("fn::rotate"):
            # the state is a literal; the inputs are evaluated only when rotating
            if isinstance(arg, dict) and "inputs" in arg:
                outer, self.in_rotate = self.in_rotate, True
                call.arg = self.build(
                    arg["inputs"], key_path(arg_path, "inputs"), key_path(key_path(prop, name), "inputs")
                )
                self.in_rotate = outer
            return call
        if name in _ONE_ARG_LIST and not (isinstance(arg, list) and len(arg) == _ONE_ARG_LIST[name]):
            self.error(f"the argument to {name} must be a two-valued list", arg_path)
            call.raw = None
            return call
        if name == "fn::concat" and not isinstance(arg, list):
            self.error("the argument to fn::concat must be an array of arrays", arg_path)
        call.arg = self.build(arg, arg_path, key_path(prop, name))
        return call


def _key_str(k: Any) -> str:
    if isinstance(k, bool):
        return "true" if k else "false"
    return "null" if k is None else str(k)


def _yaml_error(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.context_mark or exc.problem_mark
        line = mark.line if mark is not None else 0
        problem = exc.problem or ""
        m = re.match(r"expected (.*), but got", problem)
        if m:
            problem = f"did not find expected {m.group(1)}"
        return f"yaml: line {line}: {problem}"
    return f"yaml: {exc}"


class Yaml12Loader(yaml.SafeLoader):
    """YAML 1.2 scalars, as ESC's Go parser reads them: ``yes``/``on`` and dates stay strings."""


Yaml12Loader.yaml_implicit_resolvers = {
    first: [
        (tag, regexp)
        for tag, regexp in resolvers
        if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:float")
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)


def parse_definition(text: str | bytes) -> Definition:
    """Parse one environment definition; never raises on bad input."""
    b = _Builder()
    try:
        doc = yaml.load(text, Loader=Yaml12Loader)  # a SafeLoader subclass: no arbitrary objects
    except yaml.YAMLError as exc:
        return Definition([], None, True, [Diag(_yaml_error(exc), "")])
    if doc is None:
        return Definition([], None, True, [])
    if not isinstance(doc, dict):
        return Definition([], None, True, [Diag("environment must be an object", "")])
    imports: list[tuple[str, bool]] = []
    for i, item in enumerate(doc.get("imports") or []):
        if isinstance(item, str):
            imports.append((item, True))
        elif isinstance(item, dict) and len(item) == 1:
            (name,) = item
            opts = item[name] or {}
            imports.append((str(name), bool(opts.get("merge", True)) if isinstance(opts, dict) else True))
        else:
            b.error("import must be a string or an object", f"imports[{i}]")
    values = ObjectExpr("values", "")
    raw = doc.get("values")
    if isinstance(raw, dict):
        for k, v in raw.items():
            key = _key_str(k)
            kpath = key_path("values", key)
            if key in ("imports", "context"):
                b.error(f'"{key}" is a reserved key', kpath)
                continue
            if key.startswith("fn::"):
                b.error(f'builtin function call "{key}" not allowed at the top level', kpath)
                continue
            values.entries[key] = b.build(v, kpath, key)
    elif raw is not None:
        b.error("values must be an object", "values")
    return Definition(imports, values, False, b.diags)
