"""The docs cannot drift: the README's commands run, and the configuration example loads."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from fakes.process import sophia
from sophia.providers.catalog import Catalog
from sophia.settings import load_settings

ROOT = Path(__file__).resolve().parents[1]


def blocks(path: Path, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", path.read_text(encoding="utf-8"), flags=re.S)


def readme_commands() -> list[str]:
    section = (ROOT / "README.md").read_text(encoding="utf-8").split("## Commands", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, flags=re.S)
    assert block is not None
    commands = []
    for line in block.group(1).splitlines():
        line = line.split("#", 1)[0].strip()
        commands.extend(part.strip() for part in line.split(" | ") if part.strip())
    return commands


def test_configuration_example_is_valid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (example,) = blocks(ROOT / "docs" / "configuration.md", "yaml")
    data = yaml.safe_load(example)
    data["home"] = str(tmp_path)  # the example's /var/lib/sophia is not writable in a test
    path = tmp_path / "sophia.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    settings = load_settings(path)
    assert settings.aliases["sophia/fast"].chain[-1] == "local"
    assert settings.reliability.first_byte_timeout == 2.0
    catalog = Catalog(settings)
    assert {"vllm", "ollama", "local", "huggingface"} <= set(
        catalog.adapters
    ) or "huggingface" not in catalog.adapters
    assert catalog.model("vllm/llama-3.1-8b") is not None
    assert catalog.resolve("sophia/fast").chain[-1].id == "local"


@pytest.mark.parametrize("command", readme_commands())
def test_readme_command_runs(command: str, tmp_path: Path) -> None:
    args = command.split()
    assert args[0] == "sophia"
    args = args[1:]

    def is_placeholder(arg: str) -> bool:  # KEY_ID, DATA.csv: values the reader supplies
        stem = arg.split(".", 1)[0]
        return len(stem) > 1 and stem.isupper()

    if args[:1] == ["run"] or any(map(is_placeholder, args)):
        args = [a for a in args if not is_placeholder(a)] + ["--help"]
    result = sophia(*args, env={"SOPHIA_HOME": str(tmp_path)})
    if args[:2] == ["keys", "local"]:
        assert result.returncode == 1 and "no local key" in result.stderr  # only after a first `sophia run`
    else:
        assert result.returncode == 0, result.stderr
