"""`sophia collect` run as a user runs it (real subprocesses) against the local test site."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from collect.site import Site
from fakes.process import sophia, write_config

FEEDS = Path(__file__).parent.parent / "collect" / "feeds"


@pytest.fixture
def config(tmp_path: Path, httpserver: HTTPServer) -> Path:
    return write_config(
        tmp_path / "sophia.yaml",
        {
            "home": str(tmp_path / "home"),
            "cache": {"enabled": False},
            "collect": {
                "allow": [f"localhost:{httpserver.port}"],
                "delay": 0.0,
                "page_near_duplicate": 0.995,
            },
        },
    )


@pytest.mark.parametrize("command", ["fetch", "crawl", "feeds", "search", "status", "cancel", "worker"])
def test_every_collect_command_has_help(command: str) -> None:
    result = sophia("collect", command, "--help")
    assert result.returncode == 0 and "Usage:" in result.stdout, result.stderr


def test_fetch_crawl_and_search_from_the_shell(config: Path, httpserver: HTTPServer) -> None:
    site = Site(httpserver)
    fetched = sophia("collect", "fetch", site.url("/a"), "--config", str(config))
    assert fetched.returncode == 0, fetched.stderr
    assert "Section A" in fetched.stdout and "indexed" in fetched.stdout

    crawled = sophia(
        "collect", "crawl", site.url("/"), "--max-pages", "30", "--config", str(config), "--json"
    )
    assert crawled.returncode == 0, crawled.stderr
    report = json.loads(crawled.stdout)
    assert report["status"] == "done" and report["stats"]["robots"] == 1 and report["stats"]["fetched"] >= 9
    assert "pages" in crawled.stderr  # the progress line

    found = sophia("collect", "search", "Orphan page", "--config", str(config), "--json")
    assert found.returncode == 0, found.stderr
    assert any(h["citation"]["url"] == site.url("/orphan") for h in json.loads(found.stdout))


def test_feeds_are_polled_once_each_article(config: Path, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/feed.xml").respond_with_data(
        (FEEDS / "rss2.xml").read_bytes(), content_type="application/rss+xml"
    )
    url = httpserver.url_for("/feed.xml")
    first = sophia("collect", "feeds", url, "--config", str(config))
    assert first.returncode == 0, first.stderr
    new = int(first.stdout.split(": ", 1)[1].split()[0])
    assert new > 0
    again = sophia("collect", "feeds", url, "--config", str(config))
    assert again.returncode == 0 and ": 0 new" in again.stdout, again.stdout


def test_refusals_are_one_clear_line(config: Path) -> None:
    result = sophia("collect", "fetch", "http://169.254.169.254/latest/meta-data/", "--config", str(config))
    assert result.returncode != 0
    assert "refused" in result.stderr.lower() and "Traceback" not in result.stderr
    worker = sophia("collect", "worker", "--config", str(config))
    assert worker.returncode != 0 and "Redis" in worker.stderr
