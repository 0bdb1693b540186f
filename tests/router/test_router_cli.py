"""`sophia router train / eval / info` end to end, with the real MiniLM encoder: the same command
trains and evaluates a file of 2 models and one of 20, with no code or option changes."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sophia.cli.router import app
from sophia.router.artifact import load_router

runner = CliRunner()


def run(*args: str | Path) -> tuple[int, str]:
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


@pytest.mark.parametrize("n_models", [2, 20])
def test_train_then_eval_any_number_of_models(
    n_models: int, routing_csv: Callable[..., tuple[Path, list[str]]], tmp_path: Path
) -> None:
    train, models = routing_csv(n_models, 90, name="train.csv", seed=1)
    test, _ = routing_csv(n_models, 45, name="test.csv", seed=2, start=1000)
    out = tmp_path / "router.bin"

    code, output = run("train", train, "--out", out, "--quality-target", "0.95")
    assert code == 0, output
    assert f"trained on 90 prompts, {n_models} models" in output
    router = load_router(out)
    assert router.models == tuple(models)
    assert router.reference == models[-1]

    code, output = run("eval", test, "--router", out)
    assert code == 0, output
    for name in (
        "sophia (price-weight sweep)",
        "zero router",
        "kNN-20",
        "oracle",
        f"always {models[-1]}",
        "cheapest:",
    ):
        assert name in output
    assert re.search(r"^alpha: \d+ prompts; reference", output, re.MULTILINE)
    assert re.search(r"^pooled: 45 prompts", output, re.MULTILINE)

    code, output = run("eval", test, "--router", out, "--json")
    assert code == 0, output
    sections = json.loads(output)
    pooled = next(s for s in sections if s["task"] == "pooled")
    by_name = {r["name"]: r for r in pooled["routers"]}
    assert by_name["oracle"]["aiq"] >= by_name["zero router (hull of models)"]["aiq"]
    assert 0 < by_name["sophia (price-weight sweep)"]["aiq"] <= 1


def test_the_learned_router_beats_the_zero_router_when_questions_carry_signal(
    routing_csv: Callable[..., tuple[Path, list[str]]], tmp_path: Path
) -> None:
    train, _ = routing_csv(3, 240, name="train.csv", seed=3)
    test, _ = routing_csv(3, 120, name="test.csv", seed=4, start=2000)
    out = tmp_path / "router.bin"
    assert run("train", train, "--out", out)[0] == 0
    code, output = run("eval", test, "--router", out, "--json")
    assert code == 0, output
    pooled = {r["name"]: r for r in next(s for s in json.loads(output) if s["task"] == "pooled")["routers"]}
    assert pooled["sophia (price-weight sweep)"]["aiq"] > pooled["zero router (hull of models)"]["aiq"]


def test_eval_without_a_router_cross_validates(routing_csv: Callable[..., tuple[Path, list[str]]]) -> None:
    data, _ = routing_csv(3, 60, task_column=False)
    code, output = run("eval", data, "--folds", "2")
    assert code == 0, output
    assert re.search(r"^data: 60 prompts; reference vendor2/model-2", output, re.MULTILINE)
    assert not re.search(r"^pooled:", output, re.MULTILINE)  # one task: no pooled section


def test_info_describes_the_router(
    routing_csv: Callable[..., tuple[Path, list[str]]], tmp_path: Path
) -> None:
    train, _ = routing_csv(2, 40)
    out = tmp_path / "r.bin"
    assert run("train", train, "--out", out, "--scope", "task")[0] == 0
    code, output = run("info", out, "--json")
    assert code == 0, output
    info = json.loads(output)
    assert sorted(info["tasks"]) == ["alpha", "beta"]
    assert info["scope"] == "task"
    assert info["rows"] == 40


def test_malformed_input_exits_with_a_clear_message(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("prompt,a|correct\np,1\n", encoding="utf-8")
    code, output = run("train", bad, "--out", tmp_path / "r.bin")
    assert code == 1
    assert "missing column(s) a|cost_usd" in output
    code, output = run("eval", bad, "--router", tmp_path / "missing.bin")
    assert code == 1
    assert "error:" in output
    code, output = run("train", bad, "--scope", "everything")
    assert code == 2


@pytest.mark.parametrize("command", [[], ["train"], ["eval"], ["info"]])
def test_help(command: list[str]) -> None:
    code, output = run(*command, "--help")
    assert code == 0
    assert "Usage:" in output


def test_eval_ignores_extra_models_and_refuses_missing_ones(
    routing_csv: Callable[..., tuple[Path, list[str]]], tmp_path: Path
) -> None:
    train, _ = routing_csv(2, 40, name="train.csv")
    more, _ = routing_csv(3, 30, name="more.csv", start=500)
    fewer, _ = routing_csv(1, 30, name="fewer.csv", start=500)
    out = tmp_path / "r.bin"
    assert run("train", train, "--out", out)[0] == 0
    code, output = run("eval", more, "--router", out)
    assert code == 0, output
    assert "vendor2/model-2" not in output  # the router's models are vendor0 and vendor1 of a 2-model file
    code, output = run("eval", fewer, "--router", out)
    assert code == 1
    assert "no columns for model(s)" in output
