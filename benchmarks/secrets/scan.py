"""Sophia's secrets scanner beside detect-secrets 1.5.0, on two labelled sets, in the same run.

    bash benchmarks/secrets/setup.sh                     # detect-secrets in its own venv
    .venv/bin/python benchmarks/secrets/scan.py [--seed N] [--per-kind N] [--heldout-per-kind N]

**The development set** (tests/secrets/labelled.py: fake keys of today's formats in code, config,
JSON, URLs and log lines, plus digests, UUIDs, base64 blobs and git SHAs as negatives) is the one the
rules were written against. **The held-out set** (tests/secrets/heldout.py) is a second generator
written apart from the first (its own key text and its own documents: Terraform, docker-compose,
Actions, Helm, notebooks, CSV, Go/Rust/Ruby/Java/PowerShell literals, access logs, stack traces,
HTTP dumps, shell history …); its recall is split into shaped keys (what the targets speak of),
shapeless values with a secret name bound to them, and shapeless values with no name near them
(out of reach by construction, counted apart). Each set is written one file per document under
benchmarks/.work/secrets/ (with the file name a real file of that kind would have, since
detect-secrets picks its keyword rules by extension), scanned by both tools, and scored.

Scoring is by location, the same for both: a label is found when a finding on one of its lines
covers the secret (for detect-secrets, whose findings carry a line and a value: the value overlaps
the secret); a finding is a true positive when it overlaps a labelled secret, else a false positive.
detect-secrets runs with its default plugins and filters (``default_settings``), in its own venv;
``ds-run`` is the subcommand that venv executes (it needs only detect-secrets and the stdlib).
Last, the installed-libraries check: every text file of a fixed list of packages in .venv (no
secrets there, so every finding is a false positive), and the time ``credential_spans`` takes on a
typical log line and on 4 KB of text.
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


#: packages whose files make the installed-libraries check (those present in .venv are scanned)
LIBRARIES = ("httpx", "httpcore", "pydantic", "sqlalchemy", "numpy", "starlette", "anyio", "opentelemetry", "click",
             "rich", "jinja2", "cryptography", "huggingface_hub", "aiohttp", "jwt", "mcp", "asyncpg", "yaml")  # fmt: skip


def ds_run(folder: str) -> None:
    """In detect-secrets' venv: every finding as JSON lines (file, line, value, type); ``folder`` is a
    folder of files, or a file listing one path a line."""
    from detect_secrets import SecretsCollection
    from detect_secrets.settings import default_settings

    where = Path(folder)
    files = sorted(where.iterdir()) if where.is_dir() else [Path(p) for p in where.read_text().splitlines()]
    with default_settings():
        collection = SecretsCollection()
        for file in files:
            collection.scan_file(str(file))
        for filename, secrets in collection.data.items():
            for secret in secrets:
                row = {"file": filename if not where.is_dir() else Path(filename).name, "line": secret.line_number,
                       "value": secret.secret_value, "type": secret.type}  # fmt: skip
                print(json.dumps(row))


def _module(stem: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        f"secrets_{stem}", ROOT / "tests" / "secrets" / f"{stem}.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[f"secrets_{stem}"] = module
    spec.loader.exec_module(module)
    return module


def _suffix(context: str, text: str) -> str:
    if context == "config":
        if text.lstrip("# abcdefghijklmnopqrstuvwxyz0123456789\n").startswith("[") or "\n[" in text:
            return ".toml"
        return ".yaml" if ":\n" in text or "\n  " in text else ".env"
    return {"code": ".py", "json": ".json", "url": ".txt", "log": ".log"}.get(context, ".txt")


#: a held-out template family -> the file name a real file of that kind has
_FAMILY_FILES = {
    "go": ".go", "rust": ".rs", "ruby": ".rb", "java": ".java", "powershell": ".ps1", "typescript": ".ts",
    "python": ".py", "python-repr": ".py", "terraform": ".tfvars", "docker-compose": "docker-compose.yml",
    "github-actions": ".yml", "helm": "values.yaml", "properties": ".properties", "systemd": ".service",
    "k8s-secret": ".yaml", "csv": ".csv", "jupyter": ".ipynb", "vscode": ".json", "postman-env": ".json",
    "secrets-manager": ".json", "json": ".json", "aws-credentials": "credentials", "shell-history": ".bash_history",
}  # fmt: skip


def _write(folder: Path, docs: list[tuple[str, str, str, list[Any]]]) -> list[dict[str, Any]]:
    """One file per (context, suffix, text, labels); the rows the scores are computed from."""
    shutil.rmtree(folder, ignore_errors=True)  # a set from an older generator must not linger
    folder.mkdir(parents=True)
    rows = []
    for i, (context, suffix, text, labels) in enumerate(docs):
        name = f"{i:05d}-{context}{'' if suffix.startswith('.') else '-'}{suffix}"
        (folder / name).write_text(text + "\n")
        rows.append({"file": name, "context": context, "text": text, "labels": labels})
    return rows


def write_set(seed: int, per_kind: int) -> tuple[Path, list[dict[str, Any]]]:
    folder = WORK / f"set-{seed}-{per_kind}"
    docs = [
        (s.context, _suffix(s.context, s.text), s.text, [(lb.kind, lb.start, lb.end) for lb in s.labels])
        for s in _module("labelled").generate(seed, per_kind=per_kind)
    ]
    return folder, _write(folder, docs)


def write_heldout(seed: int, per_kind: int) -> tuple[Path, list[dict[str, Any]]]:
    """The held-out set; a label is (kind, start, end, group) with group shaped, named or unnamed."""
    folder = WORK / f"heldout-{seed}-{per_kind}"
    docs = []
    for doc in _module("heldout").generate(seed, per_kind=per_kind):
        suffix = _FAMILY_FILES.get(doc.family, {"url": ".txt", "log": ".log"}.get(doc.context, ".txt"))
        labels = [(p.kind, p.start, p.end, "shaped" if p.shaped else "named" if p.named else "unnamed")
                  for p in doc.planted]  # fmt: skip
        docs.append(("negative" if doc.family == "negative" else doc.context, suffix, doc.text, labels))
    return folder, _write(folder, docs)


def _line_at(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def score(rows: list[dict[str, Any]], found: dict[str, list[tuple[int, int]]]) -> dict[str, Any]:
    """Recall per context (and per group and per kind, for labels that carry a group) and precision;
    ``found`` maps a file to its findings as (start, end) offsets."""
    hits: Counter[tuple[str, str]] = Counter()
    totals: Counter[tuple[str, str]] = Counter()
    kind_hits: Counter[str] = Counter()
    kind_totals: Counter[str] = Counter()
    true_pos = false_pos = 0
    negatives_flagged = 0
    for row in rows:
        spans = found.get(row["file"], [])
        for start, end in spans:
            if any(start < lb[2] and lb[1] < end for lb in row["labels"]):
                true_pos += 1
            else:
                false_pos += 1
        negatives_flagged += row["context"] == "negative" and bool(spans)
        for kind, s, e, *group in row["labels"]:
            key = (group[0] if group else "all", row["context"])
            hit = any(start < e and s < end for start, end in spans)
            totals[key] += 1
            hits[key] += hit
            if not group or group[0] == "shaped":
                kind_totals[kind] += 1
                kind_hits[kind] += hit
    n_neg = sum(row["context"] == "negative" for row in rows)
    return {
        "recall": {key: hits[key] / totals[key] for key in totals},
        "counts": totals,
        "kinds": {kind: (kind_hits[kind], kind_totals[kind]) for kind in kind_totals},
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


def _both(folder: Path, rows: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any], float, float]:
    began = time.perf_counter()
    ours = score(rows, sophia_spans(rows))
    ours_s = time.perf_counter() - began
    began = time.perf_counter()
    theirs = score(rows, detect_secrets_spans(folder, rows))
    return ours, theirs, ours_s, time.perf_counter() - began


def _line(label: str, ours: object, theirs: object) -> None:
    print(f"{label:34}{ours:>12}{theirs:>24}")


def _pct(hit: float | None) -> str:
    return "-" if hit is None else f"{hit:.1%}"


def report_development(seed: int, per_kind: int) -> None:
    folder, rows = write_set(seed, per_kind)
    ours, theirs, ours_s, theirs_s = _both(folder, rows)
    n_neg = sum(row["context"] == "negative" for row in rows)
    print(f"development set (labelled.py), seed {seed}: {len(rows)} documents, {ours['labels']} planted secrets, "
          f"{n_neg} negative documents")  # fmt: skip
    _line("", "sophia", "detect-secrets 1.5.0")
    for context in CONTEXTS:
        _line(
            f"recall {context}",
            _pct(ours["recall"][("all", context)]),
            _pct(theirs["recall"][("all", context)]),
        )
    _summary(ours, theirs, ours_s, theirs_s)


def _summary(ours: dict[str, Any], theirs: dict[str, Any], ours_s: float, theirs_s: float) -> None:
    _line("precision", _pct(ours["precision"]), _pct(theirs["precision"]))
    _line("false positives", ours["false_positives"], theirs["false_positives"])
    _line("negatives flagged", _pct(ours["negatives_flagged"]), _pct(theirs["negatives_flagged"]))
    _line("seconds", f"{ours_s:.2f}", f"{theirs_s:.2f}")


def report_heldout(seed: int, per_kind: int) -> None:
    folder, rows = write_heldout(seed, per_kind)
    ours, theirs, ours_s, theirs_s = _both(folder, rows)
    n_neg = sum(row["context"] == "negative" for row in rows)
    print(f"\nheld-out set (heldout.py), seed {seed}: {len(rows)} documents, {ours['labels']} planted secrets, "
          f"{n_neg} negative documents")  # fmt: skip
    _line("", "sophia", "detect-secrets 1.5.0")
    for group, title in (
        ("shaped", "shaped"),
        ("named", "shapeless, named"),
        ("unnamed", "shapeless, no name"),
    ):
        for context in CONTEXTS:
            key = (group, context)
            if key in ours["counts"]:
                label = f"{title} {context} (n={ours['counts'][key]})"
                _line(label, _pct(ours["recall"][key]), _pct(theirs["recall"][key]))
    _summary(ours, theirs, ours_s, theirs_s)
    print("shaped recall by kind (sophia / detect-secrets):")
    kinds = sorted(ours["kinds"])
    for i in range(0, len(kinds), 4):
        print(
            "  "
            + "  ".join(
                f"{k} {_frac(ours['kinds'][k])}/{_frac(theirs['kinds'][k])}" for k in kinds[i : i + 4]
            )
        )


def _frac(hit_total: tuple[int, int]) -> str:
    return f"{hit_total[0] / hit_total[1]:.0%}"


def report_libraries() -> None:
    """No secrets live in installed libraries: every finding is a false positive."""
    from sophia.secrets.scan import iter_files, scan_paths

    site = next((ROOT / ".venv" / "lib").glob("python3*/site-packages"))
    roots = [site / name for name in LIBRARIES if (site / name).is_dir()]
    files = list(iter_files(roots))
    began = time.perf_counter()
    ours = scan_paths(roots)
    ours_s = time.perf_counter() - began
    listing = WORK / "libraries.txt"
    listing.write_text("\n".join(map(str, files)))
    began = time.perf_counter()
    done = subprocess.run([str(DS_PYTHON), __file__, "ds-run", str(listing)], check=True, capture_output=True,
                          text=True)  # fmt: skip
    theirs_s = time.perf_counter() - began
    print(f"\ninstalled libraries: {len(roots)} packages, {len(files)} files")
    _line("findings (all false positives)", len(ours), len(done.stdout.splitlines()))
    _line("seconds", f"{ours_s:.1f}", f"{theirs_s:.1f}")
    print("  sophia's: " + ", ".join(sorted({f"{f.kind} {Path(f.path or '').name}:{f.line}" for f in ours})))


def report_speed() -> None:
    from sophia.secrets.scan import credential_spans

    line = ("2026-12-03T10:14:07.112Z INFO gateway.request tenant=acme model=gpt-4o-mini route=/v1/chat/completions "
            "status=200 latency_ms=412 tokens_in=1834 tokens_out=221 cache=miss upstream=openai request_id=7f3c2a91")  # fmt: skip
    with_key = line[:150] + " api_key=Zr8mQ2xWp9Lk4Vb7Tc1N9sQ"  # pragma: allowlist secret
    words = [
        "alpha",
        "request",
        "latency",
        "model",
        "tenant",
        "retry",
        "status=200",
        "upstream",
        "user_id=42",
    ]
    text = " ".join(words[i % len(words)] for i in range(700))[:4096]
    print("\ncredential_spans, best of 5 runs:")
    for label, sample, n in (("200-char log line", line, 5000), ("200-char line with a key", with_key, 5000),
                             ("4 KB of text", text, 500)):  # fmt: skip
        best = min(_timed(credential_spans, sample, n) for _ in range(5))
        print(f"  {label:28}{best * 1e6:8.1f} µs")


def _timed(function: Any, sample: str, n: int) -> float:
    began = time.perf_counter()
    for _ in range(n):
        function(sample)
    return (time.perf_counter() - began) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=424242)
    parser.add_argument("--per-kind", type=int, default=6)
    parser.add_argument("--heldout-seed", type=int, default=20261203)
    parser.add_argument("--heldout-per-kind", type=int, default=6)
    parser.add_argument("--no-libraries", action="store_true", help="skip the installed-libraries check")
    args = parser.parse_args()
    if not DS_PYTHON.exists():
        sys.exit("detect-secrets is not installed: run bash benchmarks/secrets/setup.sh")
    report_development(args.seed, args.per_kind)
    report_heldout(args.heldout_seed, args.heldout_per_kind)
    if not args.no_libraries:
        report_libraries()
    report_speed()


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "ds-run":
        ds_run(sys.argv[2])
    else:
        sys.path.insert(0, str(ROOT / "src"))
        main()
