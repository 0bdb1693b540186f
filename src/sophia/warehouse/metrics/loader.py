"""Read semantic models and metrics as dbt writes them, and let dbt's own code validate them.

A dbt project declares ``semantic_models:`` and ``metrics:`` lists in its YAML, with
``model: ref('deals')`` naming the table. dbt-core turns that into the manifest that
``dbt-semantic-interfaces`` (DSI) parses; we do the same small translation here, without dbt-core:
``ref('x')`` becomes the warehouse table ``x`` in the configured schema, each list item becomes one
DSI document, and one project configuration names a *virtual* day time spine (DSI requires one; the
compiler generates its dates in SQL, so no ``metricflow_time_spine`` table has to exist).

Errors are DSI's own (its JSON schemas, its parser and its ``SemanticManifestValidator``), each
reported with the file it came from.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml
from dbt_semantic_interfaces.implementations.semantic_manifest import PydanticSemanticManifest
from dbt_semantic_interfaces.parsing.dir_to_model import (
    parse_yaml_files_to_validation_ready_semantic_manifest,
)
from dbt_semantic_interfaces.parsing.objects import YamlConfigFile
from dbt_semantic_interfaces.validations.semantic_manifest_validator import SemanticManifestValidator
from dbt_semantic_interfaces.validations.validator_helpers import ValidationIssue, ValidationIssueLevel

from sophia.errors import ConfigError

#: where the shipped demo definitions live
DEFINITIONS = Path(__file__).parent / "definitions"

#: the time spine DSI insists on; never read (the compiler generates dates with generate_series)
TIME_SPINE = "metricflow_time_spine"

_REF = re.compile(r"""^\s*ref\(\s*['"](?P<name>[A-Za-z_][\w]*)['"]\s*(?:,\s*['"][^'"]*['"]\s*)?\)\s*$""")
_YAML_SUFFIXES = (".yml", ".yaml")
#: top-level keys of a dbt properties file that carry no semantic-layer objects
_IGNORED_KEYS = frozenset({"version", "models", "sources", "seeds", "snapshots", "macros", "exposures"})


def yaml_files(paths: Iterable[Path]) -> list[Path]:
    """Every YAML file of ``paths`` (files as given, folders searched recursively), in a stable order."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.suffix in _YAML_SUFFIXES and p.is_file()))
        elif path.is_file():
            found.append(path)
        else:
            raise ConfigError(f"metric definitions not found: {path}")
    return found


def table_of(model: str) -> str:
    """The table a dbt ``model:`` value names: ``ref('deals')`` -> ``deals``."""
    match = _REF.match(model)
    if match is None:
        raise ConfigError(f"model must be ref('<table>'), got {model!r}")
    return match.group("name")


def _semantic_model_document(item: dict[str, Any], schema: str, source: Path) -> dict[str, Any]:
    item = dict(item)
    model = item.pop("model", None)
    if "node_relation" not in item:
        if not isinstance(model, str):
            raise ConfigError(f"{source}: semantic model {item.get('name')!r} has no `model: ref('<table>')`")
        try:
            item["node_relation"] = {"alias": table_of(model), "schema_name": schema}
        except ConfigError as error:
            raise ConfigError(f"{source}: semantic model {item.get('name')!r}: {error.message}") from None
    return {"semantic_model": item}


def _metric_input(value: Any) -> Any:
    """dbt lets a metric input be its bare name; DSI wants ``{name: ...}`` (dbt-core converts it too)."""
    return {"name": value} if isinstance(value, str) else value


def _metric_document(item: dict[str, Any]) -> dict[str, Any]:
    params = item.get("type_params")
    if not isinstance(params, dict):
        return item
    params = dict(params)
    for key in ("numerator", "denominator"):
        if key in params:
            params[key] = _metric_input(params[key])
    if isinstance(params.get("metrics"), list):
        params["metrics"] = [_metric_input(value) for value in params["metrics"]]
    return {**item, "type_params": params}


def _dump(documents: list[dict[str, Any]]) -> tuple[str, dict[int, str]]:
    """The YAML DSI parses, and the object name at each document's first line (for its messages)."""
    parts: list[str] = []
    starts: dict[int, str] = {}
    line = 1
    for document in documents:
        text = yaml.safe_dump(document, sort_keys=False)
        body = next(iter(document.values()))
        starts[line] = str(body.get("name")) if isinstance(body, dict) else "?"
        parts.append(text)
        line += text.count("\n") + 1
    return "---\n".join(parts), starts


def _documents(source: Path, schema: str) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The DSI documents of one dbt YAML file, and which object names it defines."""
    try:
        content = yaml.safe_load(source.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise ConfigError(f"{source}: cannot read YAML: {error}") from None
    if content is None:
        return [], {}
    if not isinstance(content, dict):
        raise ConfigError(f"{source}: expected a mapping with semantic_models: and metrics:")
    documents: list[dict[str, Any]] = []
    names: dict[str, str] = {}
    for key, value in content.items():
        if key in _IGNORED_KEYS:
            continue
        if key not in ("semantic_models", "metrics", "saved_queries"):
            raise ConfigError(f"{source}: unknown top-level key {key!r} (expected semantic_models, metrics)")
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            raise ConfigError(f"{source}: {key} must be a list of mappings")
        for item in value:
            names[str(item.get("name"))] = str(source)
            if key == "semantic_models":
                documents.append(_semantic_model_document(item, schema, source))
            elif key == "metrics":
                documents.append({"metric": _metric_document(item)})
            else:
                documents.append({"saved_query": item})
    return documents, names


def _project_configuration() -> str:
    spine = {
        "node_relation": {"alias": TIME_SPINE, "schema_name": "sophia_generated"},
        "primary_column": {"name": "date_day", "time_granularity": "day"},
    }
    return yaml.safe_dump({"project_configuration": {"time_spines": [spine]}})


_LINE = re.compile(r"in file `(?P<file>[^`]+)` on line #(?P<line>\d+)")


def _describe(issue: ValidationIssue, names: dict[str, str], starts: dict[str, dict[int, str]]) -> str:
    """DSI's readable issue, naming the source file and object (its line numbers are of our translation)."""
    text = issue.as_readable_str()
    match = _LINE.search(text)
    if match:
        name = starts.get(match["file"], {}).get(int(match["line"]))
        if name is not None:
            return text.replace(match[0], f"in file `{match['file']}`, object `{name}`")
        return text
    for name, source in names.items():
        if f"`{name}`" in text or f"'{name}'" in text:
            return f"{source}: {text}"
    return text


def load_manifest(paths: Sequence[Path], *, schema: str = "") -> PydanticSemanticManifest:
    """Parse and validate dbt semantic-layer YAML; raise ``ConfigError`` listing DSI's errors.

    ``schema`` goes into each ``node_relation`` (empty: tables stay unqualified).
    """
    files = yaml_files(paths)
    configs: list[YamlConfigFile] = []
    names: dict[str, str] = {}
    starts: dict[str, dict[int, str]] = {}
    for source in files:
        documents, defined = _documents(source, schema)
        duplicates = sorted(set(defined) & set(names))
        if duplicates:
            raise ConfigError(f"{source}: {', '.join(duplicates)} already defined in another file")
        names.update(defined)
        if documents:
            contents, starts[str(source)] = _dump(documents)
            configs.append(YamlConfigFile(filepath=str(source), contents=contents))
    if not configs:
        raise ConfigError(f"no semantic models or metrics in {', '.join(str(p) for p in paths)}")
    configs.append(
        YamlConfigFile(filepath="<sophia: generated time spine>", contents=_project_configuration())
    )
    built = parse_yaml_files_to_validation_ready_semantic_manifest(configs, raise_issues_as_exceptions=False)
    issues = list(built.issues.all_issues)
    if not built.issues.has_blocking_issues:
        validator: SemanticManifestValidator[PydanticSemanticManifest] = SemanticManifestValidator()
        issues += validator.validate_semantic_manifest(built.semantic_manifest).all_issues
    errors = [
        _describe(issue, names, starts)
        for issue in issues
        if issue.level in (ValidationIssueLevel.ERROR, ValidationIssueLevel.FUTURE_ERROR)
    ]
    if errors:
        raise ConfigError("invalid metric definitions (dbt-semantic-interfaces):\n" + "\n".join(errors))
    return built.semantic_manifest
