"""Editing environment definitions and moving values in and out: what ``sophia env`` does with text.

- ``set_path`` / ``unset_path``: change one property of a definition's ``values`` by its ESC path
  (``a.b[0]``, ``a["x.y"]``), creating the mappings on the way; a secret is written as
  ``fn::secret: <plaintext>`` for the backend to encrypt.
- ``flatten`` / ``diff``: evaluated values as ``path -> value`` leaves, and the paths that differ.
- ``to_dotenv`` / ``parse_dotenv``: the ``.env`` format (quoted so that any value survives).
- ``ImportRules``: flat names (``OPENAI_API_KEY``, a GitHub organisation secret) mapped to paths
  by a rule file, e.g. ``{match: "(?P<vendor>[A-Z]+)_API_KEY", path: "sophia.providers.{vendor}.api_key"}``.
- ``parse_gh_secret_list``: the names in what ``gh secret list`` prints (the values are never
  listed by GitHub: they come from the process environment, where Actions put them).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from sophia.secrets.backend import EnvironmentError_
from sophia.secrets.esc_syntax import key_path, parse_access

__all__ = [
    "ImportRules",
    "diff",
    "flatten",
    "parse_dotenv",
    "parse_gh_secret_list",
    "parse_path",
    "set_path",
    "to_dotenv",
    "unset_path",
    "walk",
]

#: names that hold credentials when imported without a rule that says otherwise
SECRET_NAME = re.compile(r"(?i)(key|token|secret|passw|pwd|credential|private|auth|dsn|webhook)")


def parse_path(path: str) -> list[str | int]:
    """The accessors of an ESC property path; EnvironmentError_ naming the problem."""
    if not path.strip():
        raise EnvironmentError_("a property path is needed, e.g. sophia.providers.openai.api_key")
    consumed, access, errors = parse_access(path + "}")
    if errors or consumed not in (len(path), len(path) + 1):
        raise EnvironmentError_(f"{path!r} is not a property path ({'; '.join(errors) or 'unexpected text'})")
    return access


def load_definition(text: str) -> dict[str, Any]:
    doc = yaml.safe_load(text) if text.strip() else {}
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise EnvironmentError_("an environment definition is a mapping (imports, values)")
    return doc


def dump_definition(doc: Mapping[str, Any]) -> str:
    return yaml.safe_dump(dict(doc), sort_keys=False, allow_unicode=True, width=1000)


def set_path(text: str, path: str, value: Any, *, secret: bool = False) -> str:
    """``text`` (a definition) with ``values.<path>`` set to ``value`` (as a secret if asked)."""
    access = parse_path(path)
    doc = load_definition(text)
    node: Any = doc.setdefault("values", {})
    if node is None:
        node = doc["values"] = {}
    where = "values"
    for i, key in enumerate(access):
        last = i == len(access) - 1
        if isinstance(key, int):
            if not isinstance(node, list) or not -len(node) <= key < len(node):
                raise EnvironmentError_(f"{key_path(where, key)}: no such list item")
            if last:
                node[key] = _leaf(value, secret)
            else:
                node = node[key]
        else:
            if not isinstance(node, dict):
                raise EnvironmentError_(f"{where} is not a mapping: cannot set {key!r} in it")
            if _is_builtin(node):
                raise EnvironmentError_(
                    f"{where} is a function call ({next(iter(node))}): set its inputs instead"
                )
            if last:
                node[key] = _leaf(value, secret)
            else:
                child = node.get(key)
                if child is None or (_is_builtin(child) and not isinstance(access[i + 1], str)):
                    child = node[key] = {}
                node = child
        where = key_path(where, key)
    return dump_definition(doc)


def unset_path(text: str, path: str) -> str:
    """``text`` without ``values.<path>``; EnvironmentError_ when there is no such property."""
    access = parse_path(path)
    doc = load_definition(text)
    node: Any = doc.get("values")
    for key in access[:-1]:
        node = _child(node, key)
        if node is None:
            raise EnvironmentError_(f"values.{path} does not exist")
    last = access[-1]
    if _child(node, last) is None and not _holds(node, last):
        raise EnvironmentError_(f"values.{path} does not exist")
    node.pop(last)  # a dict by key, a list by index: _holds checked which
    return dump_definition(doc)


def _holds(node: Any, key: str | int) -> bool:
    if isinstance(key, int):
        return isinstance(node, list) and -len(node) <= key < len(node)
    return isinstance(node, dict) and key in node


def walk(tree: Any, path: str) -> Any:
    """The part of an evaluated tree at ``path``; KeyError when there is none."""
    for key in parse_path(path):
        if not _holds(tree, key):
            raise KeyError(path)
        tree = tree[key]
    return tree


def get_node(text: str, path: str) -> Any:
    """The raw definition node at ``values.<path>`` (a literal, or a function call), None if absent."""
    node: Any = load_definition(text).get("values")
    for key in parse_path(path):
        node = _child(node, key)
        if node is None:
            return None
    return node


def rotate_target(text: str, path: str) -> str | None:
    """The path of the ``fn::rotate`` call at or above ``values.<path>``, or None."""
    node: Any = load_definition(text).get("values")
    where = ""
    for key in parse_path(path):
        if _is_rotate(node):
            return where
        node = _child(node, key)
        where = key_path(where, key)
        if node is None:
            return None
    return where if _is_rotate(node) else None


def _is_rotate(node: Any) -> bool:
    return isinstance(node, dict) and len(node) == 1 and str(next(iter(node))).startswith("fn::rotate")


def _child(node: Any, key: str | int) -> Any:
    if _is_rotate(node):
        node = node[next(iter(node))].get("state") if isinstance(node[next(iter(node))], dict) else None
    if isinstance(key, int):
        return node[key] if isinstance(node, list) and -len(node) <= key < len(node) else None
    return node.get(key) if isinstance(node, dict) else None


def _is_builtin(node: Any) -> bool:
    return isinstance(node, dict) and len(node) == 1 and str(next(iter(node))).startswith("fn::")


def _leaf(value: Any, secret: bool) -> Any:
    if not secret:
        return value
    if not isinstance(value, str):
        raise EnvironmentError_("a secret value is a string")
    return {"fn::secret": value}


# -- evaluated values ---------------------------------------------------------------------------


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """``path -> leaf`` for every scalar of an evaluated tree (empty mappings and lists kept as leaves)."""
    out: dict[str, Any] = {}
    if isinstance(tree, dict) and tree:
        for key, value in tree.items():
            out.update(flatten(value, key_path(prefix, str(key))))
    elif isinstance(tree, list) and tree:
        for i, value in enumerate(tree):
            out.update(flatten(value, key_path(prefix, i)))
    else:
        out[prefix] = tree
    return out


@dataclass(frozen=True)
class Change:
    path: str
    kind: str  # "added" (only in the second), "removed" (only in the first), "changed"
    before: Any = None
    after: Any = None


def diff(first: Any, second: Any, *, shown_first: Any = None, shown_second: Any = None) -> list[Change]:
    """The leaves that differ, compared on ``first``/``second`` (revealed) and shown from the
    ``shown_*`` trees (redacted) when given, so a changed secret is reported without its value."""
    a, b = flatten(first), flatten(second)
    sa = flatten(shown_first) if shown_first is not None else a
    sb = flatten(shown_second) if shown_second is not None else b
    changes = []
    for path in sorted(set(a) | set(b)):
        if path not in b:
            changes.append(Change(path, "removed", before=sa.get(path)))
        elif path not in a:
            changes.append(Change(path, "added", after=sb.get(path)))
        elif a[path] != b[path]:
            changes.append(Change(path, "changed", before=sa.get(path), after=sb.get(path)))
    return changes


# -- .env ---------------------------------------------------------------------------------------

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DOTENV_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.\-]*)\s*=\s*(.*?)\s*$")


def to_dotenv(variables: Mapping[str, str]) -> str:
    """``NAME="value"`` lines, double-quoted with backslash escapes (newlines, quotes, ``$``)."""
    lines = []
    for name, value in variables.items():
        if not _ENV_NAME.fullmatch(name):
            raise EnvironmentError_(f"{name!r} is not a valid environment variable name")
        escaped = (
            value.replace("\\", "\\\\")
            .replace('"', '\\"')
            .replace("$", "\\$")
            .replace("\n", "\\n")
            .replace("\r", "\\r")
        )
        lines.append(f'{name}="{escaped}"')
    return "\n".join(lines) + ("\n" if lines else "")


def parse_dotenv(text: str) -> dict[str, str]:
    """The variables of a ``.env`` file: ``NAME=value``, ``export NAME=…``, single quotes (literal),
    double quotes (escapes), ``#`` comments; EnvironmentError_ naming the line that is not one."""
    out: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        m = _DOTENV_LINE.match(line)
        if m is None:
            raise EnvironmentError_(f"line {number} is not NAME=value")
        name, raw = m.group(1), m.group(2)
        if raw[:1] == "'" and raw.endswith("'") and len(raw) >= 2:
            value = raw[1:-1]
        elif raw[:1] == '"' and raw.endswith('"') and len(raw) >= 2:
            value = re.sub(
                r"\\(.)", lambda e: {"n": "\n", "r": "\r", "t": "\t"}.get(e.group(1), e.group(1)), raw[1:-1]
            )
        else:
            value = re.sub(r"\s+#.*$", "", raw)
        out[name] = value
    return out


def parse_gh_secret_list(text: str) -> list[str]:
    """Secret names from ``gh secret list`` output (tab-separated: name, updated, [visibility]), its
    ``--json name`` form, or one name per line."""
    stripped = text.strip()
    if stripped.startswith("["):
        import json

        try:
            rows = json.loads(stripped)
        except ValueError as exc:
            raise EnvironmentError_(f"not a gh secret list: {exc}") from None
        return [str(r["name"]) for r in rows if isinstance(r, dict) and "name" in r]
    names = []
    for line in stripped.splitlines():
        name = line.split("\t")[0].split()[0] if line.strip() else ""
        if name and name.upper() != "NAME" and _ENV_NAME.fullmatch(name):
            names.append(name)
    return names


@dataclass
class ImportRules:
    """Rules mapping flat names to property paths, tried in order; the first that matches wins.

    A rule file (YAML) is a list of ``{match: <regex, full match>, path: <template>, secret: bool}``;
    ``{group}`` in the template is a named group of the match, ``{group|lower}`` lower-cased,
    ``{name}`` the whole name. Names no rule matches go to ``environmentVariables.<NAME>``, as
    secrets when the name says so (KEY, TOKEN, SECRET, PASSWORD …)."""

    rules: list[tuple[re.Pattern[str], str, bool | None]]

    @classmethod
    def load(cls, path: Path | None) -> ImportRules:
        if path is None:
            return cls([])
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or []
        except (OSError, yaml.YAMLError) as exc:
            raise EnvironmentError_(f"cannot read the rule file {path}: {exc}") from None
        if isinstance(data, dict):
            data = data.get("rules", [])
        rules = []
        for i, rule in enumerate(data if isinstance(data, list) else []):
            if not isinstance(rule, dict) or "match" not in rule or "path" not in rule:
                raise EnvironmentError_(f"rule {i + 1} of {path} needs match and path")
            try:
                pattern = re.compile(str(rule["match"]))
            except re.error as exc:
                raise EnvironmentError_(f"rule {i + 1} of {path}: bad regex: {exc}") from None
            rules.append((pattern, str(rule["path"]), rule.get("secret")))
        return cls(rules)

    def target(self, name: str) -> tuple[str, bool]:
        """(property path, secret?) for ``name``."""
        for pattern, template, secret in self.rules:
            m = pattern.fullmatch(name)
            if m is None:
                continue
            groups = {"name": name, **{k: v or "" for k, v in m.groupdict().items()}}

            def fill(ref: re.Match[str], groups: dict[str, str] = groups, template: str = template) -> str:
                key, _, how = ref.group(1).partition("|")
                if key not in groups:
                    raise EnvironmentError_(
                        f"path {template!r} names {{{key}}}, which the match does not capture"
                    )
                value = groups[key]
                return value.lower() if how == "lower" else value.upper() if how == "upper" else value

            path = re.sub(r"\{([A-Za-z_][A-Za-z0-9_]*(?:\|(?:lower|upper))?)\}", fill, template)
            parse_path(path)
            return path, bool(SECRET_NAME.search(name)) if secret is None else bool(secret)
        return key_path("environmentVariables", name), bool(SECRET_NAME.search(name))

    def plan(self, names: Iterable[str]) -> list[tuple[str, str, bool]]:
        return [(n, *self.target(n)) for n in names]
