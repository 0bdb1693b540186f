"""Routing data: per prompt, how each model did (correctness) and what it cost.

The shape is RouterBench's: one row per prompt, a ``prompt`` column, and for every model a pair
of columns ``<model>|correct`` (0/1, or a graded score in [0, 1]) and ``<model>|cost_usd``. The
models are discovered from those headers, so the same code reads a file of two models or of
twenty. ``sample_id`` and ``eval_name`` (the task) are optional; without ``eval_name`` every row
belongs to one task named after the file.

An empty cell is a missing observation (RouterBench has a few): it is kept as NaN. Training
ignores it; evaluation counts it as the model's mean over the rows where it was observed (so a
single model's accuracy is the mean of its observed outcomes, as RouterBench reports it).
Anything else malformed is a ``ConfigError`` that names the file, line and column.
"""

from __future__ import annotations

import csv
import math
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sophia.errors import ConfigError

CORRECT, COST = "correct", "cost_usd"
PROMPT, SAMPLE_ID, TASK = "prompt", "sample_id", "eval_name"

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # prompts with long few-shot prefixes


@dataclass(frozen=True)
class RoutingData:
    """Rows of prompts with per-model outcomes; ``correct`` and ``cost`` are (rows, models), NaN = missing."""

    models: tuple[str, ...]
    prompts: list[str]
    tasks: list[str]
    sample_ids: list[str]
    correct: np.ndarray
    cost: np.ndarray
    source: str = ""

    def __len__(self) -> int:
        return len(self.prompts)

    @property
    def task_names(self) -> list[str]:
        """Tasks in order of first appearance."""
        return list(dict.fromkeys(self.tasks))

    def subset(self, rows: Sequence[int] | np.ndarray) -> RoutingData:
        idx = np.asarray(rows, dtype=np.intp)
        return RoutingData(
            self.models,
            [self.prompts[i] for i in idx],
            [self.tasks[i] for i in idx],
            [self.sample_ids[i] for i in idx],
            self.correct[idx],
            self.cost[idx],
            self.source,
        )

    def select_models(self, models: Sequence[str]) -> RoutingData:
        """The same rows with only ``models``' columns, in that order (``ConfigError`` if one is absent)."""
        missing = [m for m in models if m not in self.models]
        if missing:
            raise ConfigError(f"{self.source}: no columns for model(s) {', '.join(missing)}")
        cols = [self.models.index(m) for m in models]
        return RoutingData(
            tuple(models),
            self.prompts,
            self.tasks,
            self.sample_ids,
            self.correct[:, cols],
            self.cost[:, cols],
            self.source,
        )

    def task_rows(self, task: str) -> np.ndarray:
        return np.flatnonzero(np.asarray(self.tasks) == task)

    def filled(self) -> tuple[np.ndarray, np.ndarray]:
        """``(correct, cost)`` with each missing cell replaced by its model's mean over the observed rows
        of the same task."""
        correct, cost = self.correct.copy(), self.cost.copy()
        for task in self.task_names:
            rows = self.task_rows(task)
            correct[rows], cost[rows] = _fill(self.correct[rows]), _fill(self.cost[rows])
        return correct, cost


def _fill(values: np.ndarray) -> np.ndarray:
    out = values.copy()
    missing = np.isnan(out)
    if missing.any():
        counts = (~missing).sum(axis=0)
        sums = np.where(missing, 0.0, out).sum(axis=0)
        means = np.divide(sums, counts, out=np.zeros_like(sums), where=counts > 0)
        out[missing] = np.broadcast_to(means, out.shape)[missing]
    return out


def model_columns(header: Sequence[str], source: str) -> tuple[str, ...]:
    """The models of a header, in column order; every model needs both of its columns."""
    seen: dict[str, set[str]] = {}
    for name in header:
        model, sep, kind = name.rpartition("|")
        if sep and kind in (CORRECT, COST):
            if not model:
                raise ConfigError(f"{source}: column {name!r} has no model name before '|'")
            seen.setdefault(model, set()).add(kind)
    if not seen:
        raise ConfigError(
            f"{source}: no model columns; expected '<model>|{CORRECT}' and '<model>|{COST}' for each model"
        )
    incomplete = sorted(
        f"{m}|{next(iter({CORRECT, COST} - kinds))}" for m, kinds in seen.items() if len(kinds) < 2
    )
    if incomplete:
        raise ConfigError(f"{source}: missing column(s) {', '.join(incomplete)}")
    return tuple(seen)


def load_csv(path: str | Path) -> RoutingData:
    """Read one routing CSV; ``ConfigError`` with the file, line and column for anything malformed."""
    file = Path(path)
    source = str(file)
    try:
        handle = file.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read ({exc.strerror or exc})") from exc
    with handle:
        try:
            return _parse(csv.reader(handle), source, default_task=file.stem)
        except csv.Error as exc:
            raise ConfigError(f"{source}: not a valid CSV file ({exc})") from exc
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{source}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc


def _parse(reader: Iterator[list[str]], source: str, default_task: str) -> RoutingData:
    header = next(reader, None)
    if not header:
        raise ConfigError(f"{source}: empty file (expected a header row)")
    header = [h.strip().lstrip("\ufeff") for h in header]
    duplicates = sorted({h for h in header if header.count(h) > 1})
    if duplicates:
        raise ConfigError(f"{source}: duplicate column(s) {', '.join(duplicates)}")
    if PROMPT not in header:
        raise ConfigError(f"{source}: no {PROMPT!r} column (columns: {', '.join(header[:8])}…)")
    models = model_columns(header, source)
    col = {name: i for i, name in enumerate(header)}
    correct_cols = [col[f"{m}|{CORRECT}"] for m in models]
    cost_cols = [col[f"{m}|{COST}"] for m in models]
    prompts: list[str] = []
    tasks: list[str] = []
    ids: list[str] = []
    correct: list[list[float]] = []
    cost: list[list[float]] = []
    for line, row in enumerate(reader, start=2):
        if not row:
            continue
        if len(row) != len(header):
            raise ConfigError(f"{source}:{line}: {len(row)} fields, the header has {len(header)}")
        prompts.append(row[col[PROMPT]])
        tasks.append(row[col[TASK]].strip() if TASK in col and row[col[TASK]].strip() else default_task)
        ids.append(row[col[SAMPLE_ID]] if SAMPLE_ID in col else str(line - 1))
        correct.append([_number(row[c], header[c], source, line, 0.0, 1.0) for c in correct_cols])
        cost.append([_number(row[c], header[c], source, line, 0.0, math.inf) for c in cost_cols])
    if not prompts:
        raise ConfigError(f"{source}: no data rows")
    data = RoutingData(
        models,
        prompts,
        tasks,
        ids,
        np.array(correct, dtype=np.float64),
        np.array(cost, dtype=np.float64),
        source,
    )
    never = [m for m, seen in zip(models, (~np.isnan(data.correct)).any(axis=0), strict=True) if not seen]
    if never:
        raise ConfigError(f"{source}: model(s) with no observed outcome: {', '.join(never)}")
    return data


def _number(text: str, column: str, source: str, line: int, low: float, high: float) -> float:
    text = text.strip()
    if not text:
        return math.nan
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{source}:{line}: column {column!r}: {text[:40]!r} is not a number") from None
    if math.isnan(value):
        return value
    if not low <= value <= high:
        bounds = f"between {low:g} and {high:g}" if math.isfinite(high) else f"at least {low:g}"
        raise ConfigError(f"{source}:{line}: column {column!r}: {value:g} is not {bounds}")
    return value


def load_many(paths: Sequence[str | Path]) -> RoutingData:
    """Read and concatenate CSVs that rate the same models (in any column order)."""
    if not paths:
        raise ConfigError("no data file given")
    parts = [load_csv(p) for p in paths]
    first = parts[0]
    for part in parts[1:]:
        if set(part.models) != set(first.models):
            only_a = sorted(set(first.models) - set(part.models))
            only_b = sorted(set(part.models) - set(first.models))
            raise ConfigError(
                f"{part.source} rates other models than {first.source}: "
                f"missing {', '.join(only_a) or '-'}; extra {', '.join(only_b) or '-'}"
            )
    order = [[part.models.index(m) for m in first.models] for part in parts]
    return RoutingData(
        first.models,
        [p for part in parts for p in part.prompts],
        [t for part in parts for t in part.tasks],
        [s for part in parts for s in part.sample_ids],
        np.concatenate([part.correct[:, o] for part, o in zip(parts, order, strict=True)]),
        np.concatenate([part.cost[:, o] for part, o in zip(parts, order, strict=True)]),
        ", ".join(part.source for part in parts),
    )
