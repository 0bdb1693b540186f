"""The JSON-schema subset ESC checks provider inputs and rotator state with.

Schemas are plain JSON-schema dicts (``type``, ``const``, ``enum``, ``properties``, ``required``,
``additionalProperties``, ``prefixItems``, ``items``, ``anyOf``, ``oneOf``, ``$ref`` into
``$defs``, ``dependentRequired`` and the numeric, string, array and object bounds). Messages are
ESC's, word for word (including its ``less than or equal to1``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

Report = Callable[[str, str], None]  # (summary, path)


def type_name(x: Any) -> str:
    if x is None:
        return "null"
    if isinstance(x, bool):
        return "boolean"
    if isinstance(x, (int, float)):
        return "number"
    if isinstance(x, str):
        return "string"
    return "array" if isinstance(x, list) else "object"


def _compact(x: Any) -> str:
    return json.dumps(x, separators=(",", ":"), ensure_ascii=False)


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


class Validator:
    """Validate plain JSON data against a schema, reporting every violation with a path."""

    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root

    def errors(
        self, value: Any, schema: Any, path: str, child_path: Callable[[str, str | int], str]
    ) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        self._check(value, schema, path, child_path, out)
        return out

    def _check(
        self,
        value: Any,
        schema: Any,
        path: str,
        child: Callable[[str, str | int], str],
        out: list[tuple[str, str]],
    ) -> None:
        if schema is True or schema == {}:
            return
        if schema is False:
            out.append(("no value is allowed", path))
            return
        if "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[-1]
            self._check(value, self.root.get("$defs", {}).get(name, True), path, child, out)
        for key in ("anyOf", "oneOf"):
            if key in schema:
                subs = []
                for sub in schema[key]:
                    errs: list[tuple[str, str]] = []
                    self._check(value, sub, path, child, errs)
                    subs.append(errs)
                matched = sum(1 for e in subs if not e)
                if key == "anyOf" and matched == 0:
                    out.extend(e for errs in subs for e in errs)
                    out.append(("at least one subschema must match", path))
                if key == "oneOf" and matched != 1:
                    out.extend(e for errs in subs for e in errs)
                    out.append(("exactly one subschema must match", path))
        got = type_name(value)
        want = schema.get("type")
        if want is not None and want != got:
            out.append((f"expected {want}, got {got}", path))
        if "const" in schema and value != schema["const"]:
            out.append((f"expected {_compact(schema['const'])}", path))
        if "enum" in schema and value not in schema["enum"]:
            out.append((f"expected one of {_compact(schema['enum'])}", path))
        if want is not None and want != got:
            return
        if got == "object":
            self._object(value, schema, path, child, out)
        elif got == "array":
            self._array(value, schema, path, child, out)
        elif got == "string":
            self._string(value, schema, path, out)
        elif got == "number":
            self._number(value, schema, path, out)

    def _object(
        self, value: dict[str, Any], schema: Any, path: str, child: Any, out: list[tuple[str, str]]
    ) -> None:
        props = schema.get("properties", {})
        missing = [k for k in schema.get("required", []) if k not in value]
        for k, deps in schema.get("dependentRequired", {}).items():
            if k in value:
                missing.extend(d for d in deps if d not in value and d not in missing)
        if missing:
            out.append((f"missing required properties: {', '.join(missing)}", path))
        extra = schema.get("additionalProperties", True)
        for k, v in value.items():
            self._check(v, props.get(k, extra), child(path, k), child, out)
        if "minProperties" in schema and len(value) < schema["minProperties"]:
            out.append((f"expected an object with at least {schema['minProperties']} properties", path))
        if "maxProperties" in schema and len(value) > schema["maxProperties"]:
            out.append((f"expected an object with at most {schema['maxProperties']} properties", path))

    def _array(
        self, value: list[Any], schema: Any, path: str, child: Any, out: list[tuple[str, str]]
    ) -> None:
        prefix = schema.get("prefixItems", [])
        items = schema.get("items", True)
        for i, v in enumerate(value):
            self._check(v, prefix[i] if i < len(prefix) else items, child(path, i), child, out)
        if "minItems" in schema and len(value) < schema["minItems"]:
            out.append((f"expected an array with at least {schema['minItems']} items", path))
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            out.append((f"expected an array with at most {schema['maxItems']} items", path))

    def _string(self, value: str, schema: Any, path: str, out: list[tuple[str, str]]) -> None:
        if "minLength" in schema and len(value) < schema["minLength"]:
            out.append((f"expected a string of at least length {schema['minLength']}", path))
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            out.append((f"expected a string of at most length {schema['maxLength']}", path))
        if "pattern" in schema and not re.search(schema["pattern"], value):
            out.append((f'string must match the pattern "{schema["pattern"]}"', path))

    def _number(self, value: float, schema: Any, path: str, out: list[tuple[str, str]]) -> None:
        if "multipleOf" in schema and (value / schema["multipleOf"]) % 1 != 0:
            out.append((f"expected a multiple of {_num(schema['multipleOf'])}", path))
        if "minimum" in schema and value < schema["minimum"]:
            out.append((f"expected a number greater than or equal to {_num(schema['minimum'])}", path))
        if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
            out.append((f"expected a number greater than {_num(schema['exclusiveMinimum'])}", path))
        if "maximum" in schema and value > schema["maximum"]:
            out.append((f"expected a number less than or equal to{_num(schema['maximum'])}", path))
        if "exclusiveMaximum" in schema and value >= schema["exclusiveMaximum"]:
            out.append((f"expected a number less than {_num(schema['exclusiveMaximum'])}", path))
