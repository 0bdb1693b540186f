"""The rows of the report: one target under one kind of traffic, each with its wrk script.

Every target gets the fixed body; all but LiteLLM also get varied bodies (`questions.py`).
On the Sophia with its cache on, the fixed body is an exact hit (primed before each load) and
the varied bodies are misses: its rows count the `x-sophia-cache` answers to show it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from load import Traffic, row_key, write_script
from targets import Target

REQUEST_TIMEOUT_SECONDS = 5.0  # longer than any pass-through's p99 here: a slow answer is not an error
# The cache's miss path embeds every question, and its index is rebuilt as it grows: give it
# room, so a slow answer shows in p99 rather than as an error.
CACHE_REQUEST_TIMEOUT_SECONDS = 30.0

ROW_LABELS = {
    ("sophia", "fixed"): "Sophia {version}, cache off (pass-through)",
    ("sophia", "varied"): "Sophia {version}, cache off (pass-through), varied bodies",
    ("sophia-cache", "fixed"): "Sophia {version}, cache on: exact hits (fixed body)",
    ("sophia-cache", "varied"): "Sophia {version}, cache on: misses (varied bodies)",
    ("sophia-before", "fixed"): "Sophia {version}, cache off (pass-through)",
    ("sophia-before", "varied"): "Sophia {version}, cache off (pass-through), varied bodies",
    ("sophia-cache-before", "fixed"): "Sophia {version}, cache on: exact hits (fixed body)",
    ("sophia-cache-before", "varied"): "Sophia {version}, cache on: misses (varied bodies)",
}


@dataclass(frozen=True)
class Row:
    target: Target
    traffic: Traffic
    script: Path

    @property
    def key(self) -> str:
        return row_key(self.target.key, self.traffic)

    @property
    def label(self) -> str:
        template = ROW_LABELS.get((self.target.key, self.traffic))
        if template is not None:
            return template.format(version=self.target.version)
        suffix = ", varied bodies" if self.traffic == "varied" else ""
        return f"{self.target.label} {self.target.version}{suffix}"

    @property
    def primes_exact_hit(self) -> bool:
        """Before each load, the fixed body must be cached (the oldest entries may have gone)."""
        return self.target.cache_on and self.traffic == "fixed"

    @property
    def timeout_seconds(self) -> float:
        return CACHE_REQUEST_TIMEOUT_SECONDS if self.target.cache_on else REQUEST_TIMEOUT_SECONDS


def build_rows(targets: list[Target], traffics: list[Traffic], workdir: Path, seed: int) -> list[Row]:
    """Every target under each kind of traffic it takes, fixed rows first; their scripts written."""
    rows = []
    for traffic in traffics:
        for target in targets:
            if traffic not in target.traffic:
                continue
            script = workdir / f"{row_key(target.key, traffic)}.lua"
            write_script(script, target.model, target.headers, traffic, target.cache_on, seed)
            rows.append(Row(target, traffic, script))
    return rows
