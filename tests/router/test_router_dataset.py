"""Loading routing CSVs: models found from the headers, missing cells, and clear errors."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from sophia.errors import ConfigError
from sophia.router.dataset import load_csv, load_many

HEADER = "sample_id,eval_name,prompt,a|correct,b|correct,a|cost_usd,b|cost_usd\n"


def write(tmp_path: Path, text: str, name: str = "d.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_models_are_discovered_from_headers_in_column_order(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + 's1,t,"hi, there",1,0,0.1,0.2\ns2,t,yo,0,1,0.3,0.4\n')
    data = load_csv(path)
    assert data.models == ("a", "b")
    assert data.prompts == ["hi, there", "yo"]
    assert data.tasks == ["t", "t"]
    assert data.sample_ids == ["s1", "s2"]
    np.testing.assert_array_equal(data.correct, [[1, 0], [0, 1]])
    np.testing.assert_allclose(data.cost, [[0.1, 0.2], [0.3, 0.4]])


def test_model_names_may_contain_slashes_and_pipes(tmp_path: Path) -> None:
    path = write(tmp_path, "prompt,org/m|x|correct,org/m|x|cost_usd\np,1,0.5\n")
    assert load_csv(path).models == ("org/m|x",)


def test_without_eval_name_the_task_is_the_file_name_and_ids_are_row_numbers(tmp_path: Path) -> None:
    path = write(tmp_path, "prompt,a|correct,a|cost_usd\np,1,0.5\nq,0,0.5\n", name="my_task.csv")
    data = load_csv(path)
    assert data.tasks == ["my_task", "my_task"]
    assert data.sample_ids == ["1", "2"]


def test_empty_cells_are_missing_and_filled_per_task(tmp_path: Path) -> None:
    text = (
        HEADER
        + "1,t,p,,1,0.1,0.2\n2,t,q,1,1,0.1,0.2\n3,t,r,0,1,0.1,0.2\n4,u,s,,0,0.1,0.2\n5,u,v,0,0,0.1,0.2\n"
    )
    data = load_csv(write(tmp_path, text))
    assert math.isnan(data.correct[0, 0])
    correct, _ = data.filled()
    assert correct[0, 0] == pytest.approx(0.5)  # mean of a on task t: (1 + 0) / 2
    assert correct[3, 0] == pytest.approx(0.0)  # task u's own mean, not t's


def test_graded_scores_between_zero_and_one_are_accepted(tmp_path: Path) -> None:
    data = load_csv(write(tmp_path, "prompt,a|correct,a|cost_usd\np,0.75,0.5\n"))
    assert data.correct[0, 0] == 0.75


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty file"),
        ("prompt,a|correct,a|cost_usd\n", "no data rows"),
        ("text,a|correct,a|cost_usd\np,1,1\n", "no 'prompt' column"),
        ("prompt,other\np,1\n", "no model columns"),
        ("prompt,a|correct,b|correct,a|cost_usd\np,1,1,1\n", "missing column(s) b|cost_usd"),
        ("prompt,a|correct,a|cost_usd\np,yes,1\n", "d.csv:2: column 'a|correct': 'yes' is not a number"),
        (
            "prompt,a|correct,a|cost_usd\np,1,1\nq,2,1\n",
            "d.csv:3: column 'a|correct': 2 is not between 0 and 1",
        ),
        ("prompt,a|correct,a|cost_usd\np,1,-0.1\n", "-0.1 is not at least 0"),
        ("prompt,a|correct,a|cost_usd\np,1,1,extra\n", "d.csv:2: 4 fields, the header has 3"),
        ("prompt,prompt,a|correct,a|cost_usd\np,p,1,1\n", "duplicate column(s) prompt"),
        ("prompt,a|correct,a|cost_usd\np,,1\n", "no observed outcome: a"),
    ],
)
def test_malformed_files_fail_with_file_line_and_column(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_csv(write(tmp_path, text))
    assert message in err.value.message


def test_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_csv(tmp_path / "nope.csv")


def test_binary_garbage_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "bin.csv"
    path.write_bytes(b"\xff\xfe\x00garbage\x00")
    with pytest.raises(ConfigError, match=r"bin\.csv"):
        load_csv(path)


def test_load_many_concatenates_and_aligns_model_columns(tmp_path: Path) -> None:
    first = write(tmp_path, "prompt,a|correct,b|correct,a|cost_usd,b|cost_usd\np,1,0,1,2\n", "x.csv")
    second = write(tmp_path, "prompt,b|correct,a|correct,b|cost_usd,a|cost_usd\nq,1,0,2,1\n", "y.csv")
    data = load_many([first, second])
    assert data.models == ("a", "b")
    np.testing.assert_array_equal(data.correct, [[1, 0], [0, 1]])
    np.testing.assert_array_equal(data.cost, [[1, 2], [1, 2]])
    assert data.tasks == ["x", "y"]


def test_load_many_refuses_files_rating_different_models(tmp_path: Path) -> None:
    first = write(tmp_path, "prompt,a|correct,a|cost_usd\np,1,1\n", "x.csv")
    second = write(tmp_path, "prompt,b|correct,b|cost_usd\np,1,1\n", "y.csv")
    with pytest.raises(ConfigError, match="rates other models"):
        load_many([first, second])


def test_select_models_reorders_and_refuses_absent_models(tmp_path: Path) -> None:
    data = load_csv(write(tmp_path, HEADER + "1,t,p,1,0,0.1,0.2\n"))
    picked = data.select_models(["b"])
    assert picked.models == ("b",)
    np.testing.assert_array_equal(picked.correct, [[0]])
    with pytest.raises(ConfigError, match="no columns for model"):
        data.select_models(["c"])
