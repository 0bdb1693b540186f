"""The ESC evaluator's pieces: imports, interpolation, builtins, secrets, providers, rotation."""

from __future__ import annotations

import base64
import struct
import zlib
from collections.abc import Callable

import pytest

from sophia.secrets.esc import (
    Provider,
    Result,
    Rotator,
    Value,
    environment_variables,
    evaluate,
    files,
    from_plain,
)
from sophia.secrets.esc_syntax import key_path, parse_access


def envs(**definitions: str) -> Callable[[str], str]:
    def load(name: str) -> str:
        if name not in definitions:
            raise OSError(f"environment {name} not found")
        return definitions[name]

    return load


def diags(result: Result) -> set[tuple[str, str]]:
    return {(d.summary, d.path) for d in result.diags}


def test_import_cycle_names_the_import_and_the_environment_that_closes_it() -> None:
    result = evaluate("root", envs(root="imports: [a]\n", a="imports: [b]\n", b="imports: [a]\n"))
    assert [(d.summary, d.path, d.environment) for d in result.diags] == [
        ("cyclic import of a", "imports[0]", "b")
    ]
    assert result.values == {}


def test_imports_merge_in_order_and_later_wins() -> None:
    load = envs(
        root="imports: [a, b]\nvalues:\n  obj: {mine: 1}\n",
        a="values:\n  obj: {x: a, y: a}\n  s: from-a\n",
        b="values:\n  obj: {y: b}\n  s: [from-b]\n",
    )
    assert evaluate("root", load).values == {"obj": {"x": "a", "y": "b", "mine": 1}, "s": ["from-b"]}


def test_unmerged_import_is_reachable_only_through_imports() -> None:
    load = envs(
        root="imports:\n  - a: {merge: false}\nvalues:\n  got: ${imports.a.k}\n", a="values: {k: v}\n"
    )
    assert evaluate("root", load).values == {"got": "v"}


def test_interpolation_into_strings_and_lists_across_imports() -> None:
    load = envs(
        root="imports: [base]\nvalues:\n  host: db\n  list: ['${host}:${port}', '${region}', 3]\n  whole: ${list}\n",
        base="values:\n  port: 5432\n  region: eu\n",
    )
    assert evaluate("root", load).values == {
        "port": 5432,
        "region": "eu",
        "host": "db",
        "list": ["db:5432", "eu", 3],
        "whole": ["db:5432", "eu", 3],
    }


def test_dollar_dollar_escapes_an_interpolation() -> None:
    assert evaluate("e", envs(e="values:\n  a: $${not.a.ref}\n")).values == {"a": "${not.a.ref}"}


def test_reference_cycle_is_reported_where_it_closes() -> None:
    result = evaluate("e", envs(e="values:\n  a: ${b}\n  b: ${a}\n"))
    assert diags(result) == {("cyclic reference to a", "values.a")}
    assert result.values == {"a": "[unknown]", "b": "[unknown]"}


def test_secrets_propagate_through_interpolation_and_builtins() -> None:
    text = "values:\n  pw: {fn::secret: hunter2}\n  url: 'pg://u:${pw}@h'\n  b64: {fn::toBase64: '${pw}'}\n  plain: x\n"
    result = evaluate("e", envs(e=text))
    assert result.values["url"] == "pg://u:hunter2@h"  # pragma: allowlist secret (a fake, on purpose)
    assert result.redacted == {"pw": "[secret]", "url": "[secret]", "b64": "[secret]", "plain": "x"}


def test_from_base64_of_bad_input_is_a_diagnostic_not_a_crash() -> None:
    result = evaluate(
        "e", envs(e="values:\n  x: {fn::fromBase64: 'not base64!'}\n  y: {fn::fromJSON: '{x'}\n")
    )
    assert result.values == {"x": "[unknown]", "y": "[unknown]"}
    assert diags(result) == {
        ("decoding base64 string: illegal base64 data at input byte 3", "values.x"),
        ("decoding JSON string: invalid character 'x'", "values.y"),
    }


def test_to_json_escapes_like_go() -> None:
    result = evaluate("e", envs(e="values:\n  j: {fn::toJSON: {q: '<a&b>'}}\n"))
    assert result.values == {"j": '{"q":"\\u003ca\\u0026b\\u003e"}'}


def test_each_import_is_evaluated_once() -> None:
    loads: list[str] = []
    inner = envs(root="imports: [a, b]\n", a="imports: [c]\n", b="imports: [c]\n", c="values: {k: 1}\n")

    def load(name: str) -> str:
        loads.append(name)
        return inner(name)

    assert evaluate("root", load).values == {"k": 1}
    assert sorted(loads) == ["a", "b", "c", "root"]


def test_rotate_only_references_resolve_only_when_rotating() -> None:
    def echo(inputs: Value, state: Value) -> Value:
        return from_plain({"current": inputs.v["next"].v})

    text = "values:\n  r:\n    fn::rotate::echo:\n      inputs: {next: 'x-${environments.p.creds.key}'}\n      state: {current: old}\n"
    load = envs(e=text, **{"p/creds": "values: {key: new}\n"})
    rotators = {"echo": Rotator(echo)}
    opened = evaluate("e", load, rotators=rotators)
    assert (opened.values, opened.diags) == ({"r": {"current": "old"}}, [])
    rotated = evaluate("e", load, rotators=rotators, rotate=True)
    assert rotated.values == {"r": {"current": "x-new"}}


def test_from_json_to_json_and_to_string() -> None:
    text = "values:\n  o: {fn::fromJSON: '{\"b\": [1, true], \"a\": null}'}\n  j: {fn::toJSON: '${o}'}\n  s: {fn::toString: '${o}'}\n"
    values = evaluate("e", envs(e=text)).values
    assert values["o"] == {"b": [1, True], "a": None}
    assert values["j"] == '{"a":null,"b":[1,true]}'
    assert values["s"] == '"a"="","b"="\\"1\\",\\"true\\""'


def test_join_checks_element_types() -> None:
    result = evaluate("e", envs(e="values:\n  j: {fn::join: [',', [a, 1]]}\n"))
    assert diags(result) == {("expected string, got number", 'values.j["fn::join"][1][1]')}


def _envelope(plaintext: bytes) -> str:
    body = b"escx" + struct.pack(">I", 1) + bytes((b + 128) % 256 for b in plaintext)
    return base64.b64encode(body + struct.pack(">I", zlib.crc32(body))).decode()


def _rot128(payload: bytes) -> bytes:
    return bytes((b + 128) % 256 for b in payload)


def test_ciphertext_is_decrypted_and_a_corrupted_one_is_rejected() -> None:
    good = _envelope(b"s3cret")
    blob = bytearray(base64.b64decode(good))
    blob[9] ^= 1
    bad = base64.b64encode(bytes(blob)).decode()
    text = f"values:\n  ok: {{fn::secret: {{ciphertext: {good}}}}}\n  bad: {{fn::secret: {{ciphertext: {bad}}}}}\n"
    result = evaluate("e", envs(e=text), decrypt=_rot128)
    assert result.values == {"ok": "s3cret", "bad": "[unknown]"}
    assert result.redacted == {"ok": "[secret]", "bad": "[secret]"}
    assert diags(result) == {("invalid ciphertext: checksum mismatch", "values.bad")}


def test_provider_result_error_and_unknown_provider() -> None:
    def fail(inputs: Value) -> Value:
        raise ValueError(inputs.v["why"].v)

    text = (
        "values:\n  a: {fn::open::echo: {k: v}}\n  b: {fn::open::fail: {why: boom}}\n"
        "  c: {fn::open: {provider: echo, inputs: {n: 1}}}\n  d: {fn::open::nope: {}}\n"
    )
    result = evaluate("e", envs(e=text), providers={"echo": Provider(lambda i: i), "fail": fail})
    assert result.values == {"a": {"k": "v"}, "b": "[unknown]", "c": {"n": 1}, "d": "[unknown]"}
    assert diags(result) == {("boom", "values.b"), ('unknown provider "nope"', "values.d")}


def test_provider_inputs_are_checked_against_its_schema() -> None:
    schema = {
        "type": "object",
        "properties": {"port": {"type": "number", "minimum": 1}},
        "required": ["port"],
    }
    result = evaluate(
        "e",
        envs(e="values:\n  a: {fn::open::p: {port: 0}}\n"),
        providers={"p": Provider(lambda i: i, schema)},
    )
    assert diags(result) == {("expected a number greater than or equal to 1", 'values.a["fn::open::p"].port')}


def test_final_values_cannot_be_overridden() -> None:
    load = envs(root="imports: [a]\nvalues:\n  k: mine\n", a="values:\n  k: {fn::final: theirs}\n")
    result = evaluate("root", load)
    assert result.values == {"k": "theirs"}
    assert diags(result) == {("cannot override final value", "values.k")}


def test_context_names_the_environments() -> None:
    load = envs(
        root="imports: [a]\nvalues:\n  r: ${context.rootEnvironment.name}\n",
        a="values:\n  c: ${context.currentEnvironment.name}\n",
    )
    assert evaluate("root", load).values == {"c": "a", "r": "root"}


def test_rotation_returns_patches_only_for_selected_paths() -> None:
    def swap(inputs: Value, state: Value) -> Value:
        return from_plain({"a": state.v["b"].v, "b": state.v["a"].v})

    text = "values:\n  x: {fn::rotate::swap: {inputs: {}, state: {a: 1, b: 2}}}\n  y: {fn::rotate::swap: {inputs: {}, state: {a: 3, b: 4}}}\n"
    rotators = {"swap": Rotator(swap)}
    assert evaluate("e", envs(e=text), rotators=rotators).values == {
        "x": {"a": 1, "b": 2},
        "y": {"a": 3, "b": 4},
    }
    rotated = evaluate("e", envs(e=text), rotators=rotators, rotate=["y"])
    assert rotated.values == {"x": {"a": 1, "b": 2}, "y": {"a": 4, "b": 3}}
    assert [(p.path, p.state) for p in rotated.patches] == [
        ('values.y["fn::rotate::swap"].state', {"a": 4, "b": 3})
    ]


def test_reserved_outputs() -> None:
    text = "values:\n  pw: {fn::secret: p}\n  environmentVariables:\n    PGPASSWORD: ${pw}\n    PORT: 5432\n  files:\n    CERT: abc\n"
    result = evaluate("e", envs(e=text))
    assert environment_variables(result) == {"PGPASSWORD": "p", "PORT": "5432"}
    assert files(result) == {"CERT": "abc"}


def test_missing_import_is_reported_at_the_import() -> None:
    result = evaluate("root", envs(root="imports: [gone]\nvalues: {a: 1}\n"))
    assert diags(result) == {("environment gone not found", "imports[0]")}
    assert result.values == {"a": 1}


@pytest.mark.parametrize(
    ("text", "accessors", "errors"),
    [
        ('a.b["c d"][0]}', ["a", "b", "c d", 0], []),
        ('["k \\"q\\""].x}', ['k "q"', "x"], []),
        ("a[x]}", ["a", "x"], ["numeric subscript must be a positive base-10 integer"]),
        ("a.b", ["a", "b"], ["missing closing brace '}' in interpolation"]),
        ("}", [""], []),
    ],
)
def test_property_access_grammar(text: str, accessors: list[str | int], errors: list[str]) -> None:
    _, got, errs = parse_access(text)
    assert (got, errs) == (accessors, errors)


def test_paths_print_like_esc() -> None:
    assert key_path(key_path(key_path("values", "a"), "x-y"), 0) == 'values.a["x-y"][0]'
    assert key_path("values", 'q"') == 'values["q\\""]'


def test_yaml_scalars_are_read_as_yaml_1_2() -> None:
    text = "values:\n  a: yes\n  b: 2024-01-02\n  c: true\n  d: 1e3\n  on: 1\n"
    assert evaluate("e", envs(e=text)).values == {
        "a": "yes",
        "b": "2024-01-02",
        "c": True,
        "d": 1000,
        "on": 1,
    }


def test_a_yaml_syntax_error_is_a_load_diagnostic() -> None:
    result = evaluate("e", envs(e="values:\n  a: [1, 2\n"))
    assert result.values is None
    assert [d.summary for d in result.diags] == ["yaml: line 1: did not find expected ',' or ']'"]
