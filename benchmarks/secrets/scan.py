"""Sophia's secrets scanner beside detect-secrets 1.5.0, on the same generated labelled set.

    bash benchmarks/secrets/setup.sh                     # detect-secrets in its own venv
    .venv/bin/python benchmarks/secrets/scan.py [--seed N] [--per-kind N]

Writes the labelled set (tests/secrets/labelled.py: fake keys of today's formats in code, config,
JSON, URLs and log lines, plus digests, UUIDs, base64 blobs and git SHAs as negatives) to one file
per sample under benchmarks/.work/secrets/set-<seed>/, scans it with both tools, and prints recall
per context and precision side by side.

Scoring is by location, the same for both: a label is found when a finding on one of its lines
covers the secret (for detect-secrets, whose findings carry a line and a value: the value overlaps
the secret); a finding is a true positive when it overlaps a labelled secret, else a false positive.
detect-secrets runs with its default plugins and filters (``default_settings``), in its own venv;
``ds-run`` is the subcommand that venv executes (it needs only detect-secrets and the stdlib).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
WORK = ROOT / "benchmarks" / ".work" / "secrets"
DS_PYTHON = WORK / "detect-secrets-venv" / "bin" / "python"
CONTEXTS = ("code", "config", "json", "url", "log")


def ds_run(folder: str) -> None:
    """In detect-secrets' venv: every finding as JSON lines (file, line, value, type)."""
    from detect_secrets import SecretsCollection
    from detect_secrets.settings import default_settings

    with default_settings():
        collection = SecretsCollection()
        for file in sorted(Path(folder).iterdir()):
            collection.scan_file(str(file))
        for filename, secrets in collection.data.items():
            for secret in secrets:
                row = {"file": Path(filename).name, "line": secret.line_number, "value": secret.secret_value,
                       "type": secret.type}  # fmt: skip
                print(json.dumps(row))


def _labelled() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "secrets_labelled", ROOT / "tests" / "secrets" / "labelled.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["secrets_labelled"] = module
    spec.loader.exec_module(module)
    return module


def _suffix(context: str, text: str) -> str:
    if context == "config":
        if text.lstrip("# abcdefghijklmnopqrstuvwxyz0123456789\n").startswith("[") or "\n[" in text:
            return ".toml"
        return ".yaml" if ":\n" in text or "\n  " in text else ".env"
    return {"code": ".py", "json": ".json", "url": ".txt", "log": ".log"}.get(context, ".txt")


def write_set(seed: int, per_kind: int) -> tuple[Path, list[dict[str, Any]]]:
    folder = WORK / f"set-{seed}-{per_kind}"
    shutil.rmtree(folder, ignore_errors=True)  # a set from an older generator must not linger
    folder.mkdir(parents=True)
    rows = []
    for i, sample in enumerate(_labelled().generate(seed, per_kind=per_kind)):
        name = f"{i:05d}-{sample.context}{_suffix(sample.context, sample.text)}"
        (folder / name).write_text(sample.text + "\n")
        labels = [(lb.kind, lb.start, lb.end) for lb in sample.labels]
        rows.append({"file": name, "context": sample.context, "text": sample.text, "labels": labels})
    return folder, rows


def _line_at(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def score(rows: list[dict[str, Any]], found: dict[str, list[tuple[int, int]]]) -> dict[str, Any]:
    """Recall per context and precision; ``found`` maps a file to its findings as (start, end) offsets."""
    hits: Counter[str] = Counter()
    totals: Counter[str] = Counter()
    true_pos = false_pos = 0
    negatives_flagged = 0
    for row in rows:
        spans = found.get(row["file"], [])
        for start, end in spans:
            if any(start < e and s < end for _, s, e in row["labels"]):
                true_pos += 1
            else:
                false_pos += 1
        negatives_flagged += row["context"] == "negative" and bool(spans)
        for _, s, e in row["labels"]:
            totals[row["context"]] += 1
            hits[row["context"]] += any(start < e and s < end for start, end in spans)
    n_neg = sum(row["context"] == "negative" for row in rows)
    return {
        "recall": {c: hits[c] / totals[c] for c in CONTEXTS if totals[c]},
        "labels": sum(totals.values()),
        "precision": true_pos / (true_pos + false_pos) if true_pos + false_pos else 0.0,
        "false_positives": false_pos,
        "negatives_flagged": negatives_flagged / n_neg if n_neg else 0.0,
    }


def sophia_spans(rows: list[dict[str, Any]]) -> dict[str, list[tuple[int, int]]]:
    from sophia.secrets.scan import scan_text

    return {row["file"]: [(f.offset, f.offset + f.length) for f in scan_text(row["text"])] for row in rows}


def detect_secrets_spans(folder: Path, rows: list[dict[str, Any]]) -> dict[str, list[tuple[int, int]]]:
    """detect-secrets' (line, value) findings turned into offsets: the value's place on that line."""
    done = subprocess.run(
        [str(DS_PYTHON), __file__, "ds-run", str(folder)], check=True, capture_output=True, text=True
    )
    by_file = {row["file"]: row for row in rows}
    spans: dict[str, list[tuple[int, int]]] = {}
    for line in done.stdout.splitlines():
        hit = json.loads(line)
        text = by_file[hit["file"]]["text"]
        lines = text.split("\n")
        line_start = sum(len(x) + 1 for x in lines[: hit["line"] - 1])
        value = hit["value"] or ""
        at = text.find(value, line_start) if value else -1
        start, end = (
            (at, at + len(value)) if at >= 0 else (line_start, line_start + len(lines[hit["line"] - 1]))
        )
        spans.setdefault(hit["file"], []).append((start, end))
    return spans


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=424242)
    parser.add_argument("--per-kind", type=int, default=6)
    args = parser.parse_args()
    if not DS_PYTHON.exists():
        sys.exit("detect-secrets is not installed: run bash benchmarks/secrets/setup.sh")
    folder, rows = write_set(args.seed, args.per_kind)
    began = time.perf_counter()
    ours = score(rows, sophia_spans(rows))
    ours_s = time.perf_counter() - began
    began = time.perf_counter()
    theirs = score(rows, detect_secrets_spans(folder, rows))
    theirs_s = time.perf_counter() - began
    n_neg = sum(row["context"] == "negative" for row in rows)
    print(
        f"seed {args.seed}: {len(rows)} documents, {ours['labels']} planted secrets, {n_neg} negative documents"
    )
    print(f"{'':24}{'sophia':>12}{'detect-secrets 1.5.0':>24}")
    for context in CONTEXTS:
        print(f"{'recall ' + context:24}{ours['recall'][context]:>12.1%}{theirs['recall'][context]:>24.1%}")
    print(f"{'precision':24}{ours['precision']:>12.1%}{theirs['precision']:>24.1%}")
    print(f"{'false positives':24}{ours['false_positives']:>12}{theirs['false_positives']:>24}")
    print(f"{'negatives flagged':24}{ours['negatives_flagged']:>12.1%}{theirs['negatives_flagged']:>24.1%}")
    print(f"{'seconds':24}{ours_s:>12.2f}{theirs_s:>24.2f}")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "ds-run":
        ds_run(sys.argv[2])
    else:
        sys.path.insert(0, str(ROOT / "src"))
        main()
