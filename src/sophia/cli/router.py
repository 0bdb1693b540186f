"""``sophia router``: train, evaluate and inspect the learned cost-aware router."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from sophia.cli.common import JsonOption, echo, fail
from sophia.errors import SophiaError

app = typer.Typer(
    help=(
        "The learned router behind sophia/auto: per request, the cheapest model predicted to be good "
        "enough. Train it from a CSV of per-prompt, per-model correctness and cost (RouterBench's shape: "
        "prompt, <model>|correct, <model>|cost_usd, optional eval_name), then evaluate it against the "
        "zero router, kNN and the oracle."
    ),
    no_args_is_help=True,
)

DataArgs = Annotated[
    list[Path],
    typer.Argument(
        help="CSV file(s): a 'prompt' column and '<model>|correct' + '<model>|cost_usd' for every model; "
        "'eval_name' (the task) and 'sample_id' are optional. Several files must rate the same models.",
        show_default=False,
    ),
]
CacheOption = Annotated[
    Path | None,
    typer.Option(
        "--cache-dir",
        help="Cache question embeddings in this folder (re-runs then skip the encoder).",
        show_default=False,
    ),
]
FoldsOption = Annotated[
    int, typer.Option(min=2, max=20, help="Cross-validation folds (grouped by question).")
]
SeedOption = Annotated[int, typer.Option(help="Seed of the fold assignment.")]


def _progress(message: str) -> None:
    typer.secho(f"  {message}", err=True, dim=True)


def _embedder(cache_dir: Path | None) -> Any:
    from sophia.router.embedding import cached, minilm_embed

    return cached(minilm_embed, cache_dir) if cache_dir is not None else minilm_embed


@app.command("train")
def train(
    data: DataArgs,
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the trained router.")] = Path(
        "router.bin"
    ),
    quality_target: Annotated[
        float,
        typer.Option(
            min=0.5,
            max=1.0,
            help="Default quality target: the share of the strongest model's accuracy to keep, as cheaply "
            "as possible (requests may override it).",
        ),
    ] = 0.97,
    scope: Annotated[
        str,
        typer.Option(
            help="'pooled': one price weight for the whole training mix (cheapest for that mix); "
            "'task': the target holds task by task (safer when the mix changes, costs more).",
        ),
    ] = "pooled",
    folds: FoldsOption = 5,
    seed: SeedOption = 0,
    cache_dir: CacheOption = None,
) -> None:
    """Train a router on DATA.csv (train rows only) and write it to --out."""
    from sophia.router.artifact import save_router
    from sophia.router.dataset import load_many
    from sophia.router.train import TrainOptions, train_router

    if scope not in ("pooled", "task"):
        fail("--scope takes 'pooled' or 'task'", code=2)
    try:
        rows = load_many(data)
        options = TrainOptions(quality_target, folds, seed, scope=scope)
        router = train_router(rows, _embedder(cache_dir), options, progress=_progress)
        size = save_router(router, out)
    except SophiaError as exc:
        fail(exc.message)
    tasks = ", ".join(f"{t} ({n})" for t, n in router.info["rows_per_task"].items())
    echo(f"trained on {len(rows)} prompts, {len(router.models)} models; tasks: {tasks}")
    echo(f"strongest model: {router.reference}; default target {quality_target:g} ({scope})")
    echo(f"wrote {out} ({size / 1e6:.1f} MB)")


@app.command("eval")
def evaluate(
    data: DataArgs,
    router_path: Annotated[
        Path | None,
        typer.Option(
            "--router",
            "-r",
            help="A trained router. Without it, DATA is cross-validated: each fold is routed by a router "
            "trained on the other folds.",
            show_default=False,
        ),
    ] = None,
    reference: Annotated[
        str | None,
        typer.Option(
            help="Model whose accuracy and cost the savings are measured against "
            "(default: the router's strongest model).",
            show_default=False,
        ),
    ] = None,
    folds: FoldsOption = 5,
    seed: SeedOption = 0,
    cache_dir: CacheOption = None,
    json_: JsonOption = False,
) -> None:
    """Evaluate a router on DATA.csv (test rows) against its baselines.

    Per task and pooled: accuracy, cost per prompt, cost saved at 95/97/100% of the strongest
    model's accuracy and AIQ, for the router's price-weight sweep and its calibrated operating
    points, always-strongest, the cheapest model, the zero router, kNN-20 and the oracle.
    """
    from sophia.router import evaluate as ev
    from sophia.router.artifact import load_router
    from sophia.router.dataset import load_many
    from sophia.router.train import TrainOptions, prepare, strongest

    try:
        rows = load_many(data)
        embed = _embedder(cache_dir)
        if router_path is not None:
            router = load_router(router_path)
            rows = rows.select_models(router.models)  # extra models in the file are not routed to
            pred = ev.predict(router, prepare(rows, router.boilerplate, embed))
            ref = reference or router.reference
        else:
            pred = ev.cross_validate(rows, embed, TrainOptions(folds=folds, seed=seed), progress=_progress)
            ref = reference or rows.models[strongest(*rows.filled())]
        sections = ev.report(rows, pred, ref)
    except SophiaError as exc:
        fail(exc.message)
    if json_:
        echo(
            orjson.dumps(
                [_section_json(s) for s in sections], option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY
            ).decode()
        )
        return
    echo(ev.format_report(sections, ev.task_accuracy(rows, pred)))


def _section_json(section: Any) -> dict[str, Any]:
    return {
        "task": section.task,
        "rows": section.rows,
        "reference": section.reference,
        "reference_accuracy": section.ref_accuracy,
        "reference_cost_usd": section.ref_cost,
        "routers": [
            {
                "name": e.name,
                "curve": e.curve,
                "points": e.points.round(8).tolist(),
                "aiq": e.aiq,
                "savings": {f"{k:g}": v for k, v in e.savings.items()},
            }
            for e in section.entries
        ],
    }


@app.command("info")
def info(
    router_path: Annotated[Path, typer.Argument(help="A trained router file.", show_default=False)],
    json_: JsonOption = False,
) -> None:
    """Show what a router file was trained on: models, tasks, strongest model, calibration."""
    from sophia.router.artifact import load_router

    try:
        router = load_router(router_path)
    except SophiaError as exc:
        fail(exc.message)
    summary = {
        "models": list(router.models),
        "tasks": list(router.tasks),
        "reference": router.reference,
        "task_reference": dict(zip(router.tasks, router.task_reference, strict=True)),
        "quality_target": router.quality_target,
        "scope": router.scope,
        "price_weight_at_target": {
            name: router.price_weight_for(i, router.quality_target, "task")
            for i, name in enumerate(router.tasks)
        }
        | {"pooled": router.price_weight_for(0, router.quality_target, "pooled")},
        **{k: v for k, v in router.info.items() if k != "cv_ratio_by_price_weight"},
    }
    if json_:
        sys.stdout.write(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    for key, value in summary.items():
        echo(f"{key}: {value}")
