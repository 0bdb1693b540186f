"""Loopback fakes of the SaaS APIs the collector's clients call, each an aiohttp app on 127.0.0.1 (a random
port) that behaves as the service's documentation says (the same pages the client modules cite):

* ``FakeTavily``        POST /search, Bearer key, domain filters, ``{"detail": {"error": …}}`` errors
* ``FakeApify``         runs that go READY/RUNNING → SUCCEEDED (or FAILED) in real time, ``waitForFinish``
                        held server-side, datasets paged by offset/limit with X-Apify-Pagination-* headers
* ``FakeTwingly``       Blog Search API v3: ``apikey`` + query language (page-size, start-date, lang), XML
* ``FakeZenRows``       GET /v1/?apikey&url&js_render&premium_proxy over a table of target pages
* ``FakePhantomBuster`` agents launched into containers that go running → finished, result objects as JSON
                        text, ``X-Phantombuster-Key``

Every request is recorded (method, path, query, headers, body) in ``seen``. ``inject`` makes the next
requests fail as the test asks (a status with a body and headers, an echo of the request, a body that
does not parse) and ``delay`` holds every answer, for timeouts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from xml.sax.saxutils import escape

from aiohttp import web

KEY = "sk-test-Zq9v!key/+=&secret"  # characters that URL-encoding changes, to test redaction of every form


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Injected:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    echo: bool = False  # answer with the request line and headers, key included (as some APIs do)


class FakeService:
    """Recording, injection and the server's life; subclasses add the service's routes."""

    key = KEY

    def __init__(self) -> None:
        self.seen: list[Seen] = []
        self.delay = 0.0
        self.url = ""
        self._injected: deque[Injected] = deque()
        self._release = asyncio.Event()
        self._runner: web.AppRunner | None = None

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    def inject(
        self,
        status: int,
        body: bytes | str | dict[str, Any] = b"",
        *,
        headers: dict[str, str] | None = None,
        times: int = 1,
        echo: bool = False,
    ) -> None:
        if isinstance(body, dict):
            raw = json.dumps(body).encode()
            headers = {"Content-Type": "application/json", **(headers or {})}
        else:
            raw = body.encode() if isinstance(body, str) else body
        for _ in range(times):
            self._injected.append(Injected(status, raw, dict(headers or {}), echo))

    def paths(self) -> list[str]:
        return [seen.path for seen in self.seen]

    async def start(self) -> FakeService:
        @web.middleware
        async def record(request: web.Request, handler: Any) -> web.StreamResponse:
            body = await request.read()
            self.seen.append(
                Seen(request.method, request.path, dict(request.query), dict(request.headers), body)
            )
            if self.delay:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._release.wait(), self.delay)
            if self._injected:
                injected = self._injected.popleft()
                if injected.echo:
                    secret = ("authorization", "x-phantombuster-key")
                    carried = "; ".join(
                        f"{k}: {v}" for k, v in request.headers.items() if k.lower() in secret
                    )
                    echoed = f"bad request {request.method} {request.url} {carried}".strip()
                    return web.json_response({"error": echoed}, status=injected.status)
                return web.Response(status=injected.status, body=injected.body, headers=injected.headers)
            response: web.StreamResponse = await handler(request)
            return response

        app = web.Application(middlewares=[record])
        self.routes(app)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def close(self) -> None:
        self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(data, status=status, headers=headers)


# --- Tavily --------------------------------------------------------------------------------------------


class FakeTavily(FakeService):
    def __init__(self) -> None:
        super().__init__()
        self.pages = [
            {"title": f"Acme news {i}", "url": f"https://{domain}/acme/{i}", "content": f"Acme story {i}"}
            for i, domain in enumerate(["news.example.com", "blog.example.org", "news.example.com"] * 3)
        ]

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/search", self.search)

    @staticmethod
    def error(status: int, message: str) -> web.Response:
        return _json({"detail": {"error": message}}, status)

    async def search(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {self.key}":
            return self.error(401, "Unauthorized: missing or invalid API key.")
        try:
            body = json.loads(await request.read())
        except ValueError:
            return self.error(400, "Invalid JSON body.")
        if not isinstance(body.get("query"), str) or not body["query"]:
            return self.error(400, "query is required.")
        max_results = body.get("max_results", 5)
        if not isinstance(max_results, int) or not 0 <= max_results <= 20:
            return self.error(400, "max_results must be between 0 and 20.")
        if body.get("topic", "general") not in ("general", "news", "finance"):
            return self.error(400, "Invalid topic.")
        if body.get("time_range") not in (None, "day", "week", "month", "year", "d", "w", "m", "y"):
            return self.error(400, "Invalid time_range.")
        include, exclude = body.get("include_domains") or [], body.get("exclude_domains") or []
        results = []
        for rank, page in enumerate(self.pages):
            host = page["url"].split("/")[2]
            if (include and host not in include) or host in exclude:
                continue
            result: dict[str, Any] = {**page, "score": round(0.99 - rank * 0.05, 3), "raw_content": None}
            if body.get("topic") == "news":
                result["published_date"] = "Mon, 30 Jun 2025 18:05:01 GMT"
            results.append(result)
        return _json(
            {
                "query": body["query"],
                "follow_up_questions": None,
                "answer": None,
                "images": [],
                "results": results[:max_results],
                "response_time": 0.42,
                "request_id": "123e4567-e89b-12d3-a456-426614174111",
            }
        )


# --- Apify ---------------------------------------------------------------------------------------------


@dataclass
class FakeRun:
    id: str
    act_id: str
    dataset_id: str
    input: Any
    memory: int | None
    started: float
    duration: float
    final: str
    message: str | None

    def status(self) -> str:
        return self.final if time.monotonic() >= self.started + self.duration else "RUNNING"

    def data(self) -> dict[str, Any]:
        status = self.status()
        done = status != "RUNNING"
        return {
            "id": self.id,
            "actId": self.act_id,
            "status": status,
            "statusMessage": self.message if done else "Crawling",
            "startedAt": "2025-06-30T18:05:01.000Z",
            "finishedAt": "2025-06-30T18:05:02.500Z" if done else None,
            "defaultDatasetId": self.dataset_id,
            "defaultKeyValueStoreId": f"kv-{self.id}",
            "options": {"memoryMbytes": self.memory or 1024, "timeoutSecs": 3600, "build": "latest"},
        }


class FakeApify(FakeService):
    def __init__(self) -> None:
        super().__init__()
        self.actors = {"apify~web-scraper": "moJRLRc85AitArpNN"}
        self.run_seconds = 0.15
        self.final_status = "SUCCEEDED"
        self.final_message: str | None = "Finished! Total 25 requests: 25 succeeded, 0 failed."
        self.runs: dict[str, FakeRun] = {}
        self.datasets: dict[str, list[dict[str, Any]]] = {}
        self.items = [
            {"url": f"https://example.com/{i}", "title": f"Page {i}", "#debug": {"i": i}} for i in range(25)
        ]

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v2/acts/{actor}/runs", self.start_run)
        app.router.add_get("/v2/actor-runs/{run}", self.get_run)
        app.router.add_get("/v2/datasets/{dataset}/items", self.items_page)

    @staticmethod
    def error(status: int, kind: str, message: str) -> web.Response:
        return _json({"error": {"type": kind, "message": message}}, status)

    def authorized(self, request: web.Request) -> bool:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ") or request.query.get("token")
        return given == self.key

    async def wait(self, run: FakeRun, request: web.Request) -> None:
        """``waitForFinish``: hold the answer up to that many seconds (at most 60) while the run lasts."""
        wait = min(60.0, float(request.query.get("waitForFinish", 0) or 0))
        deadline = time.monotonic() + wait
        while run.status() == "RUNNING" and time.monotonic() < deadline:
            await asyncio.sleep(0.02)

    async def start_run(self, request: web.Request) -> web.Response:
        if not self.authorized(request):
            return self.error(401, "token-not-valid", "Authentication token is not valid.")
        actor = request.match_info["actor"]
        if actor not in self.actors and actor not in self.actors.values():
            return self.error(404, "record-not-found", "Actor was not found")
        memory = request.query.get("memory")
        if memory is not None and (int(memory) < 128 or int(memory) & (int(memory) - 1)):
            return self.error(400, "invalid-value", "Memory must be a power of 2 and at least 128 MB.")
        try:
            given = json.loads(await request.read() or b"{}")
        except ValueError:
            return self.error(400, "invalid-input", "Input is not valid JSON.")
        number = len(self.runs) + 1
        run = FakeRun(
            id=f"run{number:03d}HG7ML7M8z",
            act_id=self.actors.get(actor, actor),
            dataset_id=f"ds{number:03d}WkzbQMuFY",
            input=given,
            memory=int(memory) if memory else None,
            started=time.monotonic(),
            duration=self.run_seconds,
            final=self.final_status,
            message=self.final_message,
        )
        self.runs[run.id] = run
        self.datasets[run.dataset_id] = list(self.items)
        await self.wait(run, request)
        location = f"{self.url}/v2/acts/{run.act_id}/runs/{run.id}"
        return _json({"data": run.data()}, 201, headers={"Location": location})

    async def get_run(self, request: web.Request) -> web.Response:
        if not self.authorized(request):
            return self.error(401, "token-not-valid", "Authentication token is not valid.")
        run = self.runs.get(request.match_info["run"])
        if run is None:
            return self.error(404, "record-not-found", "Actor run was not found")
        await self.wait(run, request)
        return _json({"data": run.data()})

    async def items_page(self, request: web.Request) -> web.Response:
        # dataset items need no token when the dataset id is unguessable; the client sends it anyway
        items = self.datasets.get(request.match_info["dataset"])
        if items is None:
            return self.error(404, "record-not-found", "Dataset was not found")
        offset = int(request.query.get("offset", 0))
        limit = int(request.query["limit"]) if "limit" in request.query else len(items)
        page = items[offset : offset + limit]
        if request.query.get("clean") in ("1", "true"):
            page = [{k: v for k, v in item.items() if not k.startswith("#")} for item in page if item]
        headers = {
            "X-Apify-Pagination-Offset": str(offset),
            "X-Apify-Pagination-Limit": str(limit),
            "X-Apify-Pagination-Count": str(len(page)),
            "X-Apify-Pagination-Total": str(len(items)),
        }
        return _json(page, headers=headers)


# --- Twingly -------------------------------------------------------------------------------------------

TWINGLY_POSTS = [
    {
        "id": str(13735921747213240519 + i),
        "author": "Jane Doe" if i % 2 == 0 else "",
        "url": f"https://blog.example.se/acme-{i}",
        "title": f"Acme opens office {i}",
        "text": f"Acme AB opens a new office in city {i}.",
        "languageCode": "sv" if i % 3 else "en",
        "publishedAt": f"2025-06-{28 - i:02d}T0{i % 10}:00:00Z",
        "blogName": "Example News" if i % 2 == 0 else "",
        "blogUrl": "https://blog.example.se/",
    }
    for i in range(12)
]


class FakeTwingly(FakeService):
    def routes(self, app: web.Application) -> None:
        app.router.add_get("/blog/search/api/v3/search", self.search)

    @staticmethod
    def error(status: int, code: str, message: str) -> web.Response:
        xml = f'<?xml version="1.0" encoding="utf-8"?><error code="{code}"><message>{escape(message)}</message></error>'
        return web.Response(status=status, body=xml.encode(), content_type="text/xml")

    async def search(self, request: web.Request) -> web.Response:
        key = request.query.get("apikey", "")
        if not key:
            return self.error(400, "40001", "Parameter apikey may not be empty")
        if key != self.key:
            return self.error(401, "40101", "Unauthorized")
        query = request.query.get("q", "")
        if request.query.get("format", "xml") != "xml":
            return self.error(400, "40003", "Unsupported format")
        size = 10
        since: datetime | None = None
        lang: str | None = None
        if match := re.search(r"page-size:\s*(\d+)", query):
            size = int(match.group(1))
            if size > 1000:
                return self.error(400, "40002", "page-size may not exceed 1000")
        if match := re.search(r"start-date:\s*(\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}:\d{2})?)", query):
            since = datetime.fromisoformat(match.group(1)).replace(tzinfo=UTC)
        if match := re.search(r"lang:\s*(\w+)", query):
            lang = match.group(1)
        terms = re.sub(
            r"[\w-]+:\s*\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}:\d{2})?|[\w-]+:\s*\S+", " ", query
        ).split()
        if not terms:
            return self.error(400, "40002", "Invalid query: no search terms")
        hits = [
            post
            for post in TWINGLY_POSTS
            if all(term.lower() in (post["title"] + " " + post["text"]).lower() for term in terms)
            and (since is None or datetime.fromisoformat(post["publishedAt"]) >= since)
            and (lang is None or post["languageCode"] == lang)
        ]
        returned = hits[:size]
        posts = "".join(self.post(post) for post in returned)
        xml = (
            f'<?xml version="1.0" encoding="utf-8"?><twinglydata numberOfMatchesReturned="{len(returned)}" '
            f'secondsElapsed="0.017" numberOfMatchesTotal="{len(hits)}" incompleteResult="false">{posts}</twinglydata>'
        )
        return web.Response(body=xml.encode(), content_type="text/xml")

    @staticmethod
    def post(post: dict[str, str]) -> str:
        fields = "".join(f"<{name}>{escape(value)}</{name}>" for name, value in post.items())
        extra = "<locationCode>se</locationCode><coordinates /><links /><tags><tag>business</tag></tags><images />"
        times = (
            f"<indexedAt>{post['publishedAt']}</indexedAt><reindexedAt>{post['publishedAt']}</reindexedAt>"
        )
        return f"<post>{fields}{extra}{times}<inlinksCount>0</inlinksCount><blogId>42</blogId><blogRank>1</blogRank><authority>0</authority></post>"


# --- ZenRows -------------------------------------------------------------------------------------------


class FakeZenRows(FakeService):
    def __init__(self) -> None:
        super().__init__()
        self.targets: dict[str, tuple[str, bytes, str]] = {
            "https://shop.example.com/item/1": (
                "https://shop.example.com/item/1?ref=canonical",
                b"<html><body><h1>Widget</h1><div id='price'></div></body></html>",
                "text/html; charset=utf-8",
            ),
        }

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/v1/", self.fetch)

    @staticmethod
    def error(status: int, code: str, title: str, detail: str) -> web.Response:
        problem = {
            "code": code,
            "detail": detail,
            "instance": "/v1",
            "status": status,
            "title": title,
            "type": f"https://docs.zenrows.com/api-error-codes#{code}",
        }
        return web.Response(
            status=status, body=json.dumps(problem).encode(), content_type="application/problem+json"
        )

    async def fetch(self, request: web.Request) -> web.Response:
        key = request.query.get("apikey", "")
        if not key:
            return self.error(
                401, "AUTH001", "API Key Missing", "No API key was given in the apikey parameter."
            )
        if key != self.key:
            return self.error(401, "AUTH002", "Invalid API Key", "The API key given is not valid.")
        target = request.query.get("url")
        if not target:
            return self.error(
                400, "REQS001", "Requested URL is missing", "Give the page to fetch in the url parameter."
            )
        flags = {name: request.query.get(name) for name in ("js_render", "premium_proxy")}
        if any(value not in (None, "true", "false") for value in flags.values()):
            return self.error(
                400, "REQS002", "Invalid parameter value", "Boolean parameters take true or false."
            )
        page = self.targets.get(target)
        if page is None:
            return self.error(
                422, "RESP001", "Could not get content", f"The target {target} could not be fetched."
            )
        final, body, content_type = page
        js, premium = flags["js_render"] == "true", flags["premium_proxy"] == "true"
        if js:
            body = body.replace(b"<div id='price'></div>", b"<div id='price'>9.99</div>")
        cost = {(False, False): 1, (True, False): 5, (False, True): 10, (True, True): 25}[(js, premium)]
        headers = {
            "Zr-Final-Url": final,
            "Concurrency-Limit": "20",
            "Concurrency-Remaining": "19",
            "X-Request-Cost": str(cost),
            "X-Request-Id": "8d8a3c6e2f",
        }
        return web.Response(body=body, headers={**headers, "Content-Type": content_type})


# --- PhantomBuster -------------------------------------------------------------------------------------


@dataclass
class FakeContainer:
    id: str
    agent_id: str
    argument: Any
    polls_left: int
    exit_code: int
    polled: int = 0
    created: int = field(default_factory=lambda: int(time.time() * 1000))


class FakePhantomBuster(FakeService):
    def __init__(self) -> None:
        super().__init__()
        self.agents = {"4421897": "LinkedIn Search Export", "5550001": "Crashing Phantom"}
        self.crashing = {"5550001"}
        self.running_polls = 2
        self.containers: dict[str, FakeContainer] = {}

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/api/v2/agents/launch", self.launch)
        app.router.add_get("/api/v2/containers/fetch", self.fetch)
        app.router.add_get("/api/v2/containers/fetch-result-object", self.result_object)
        app.router.add_get("/api/v2/containers/fetch-output", self.output)

    @staticmethod
    def error(status: int, message: str) -> web.Response:
        return _json({"status": "error", "error": message}, status)

    def authorized(self, request: web.Request) -> bool:
        return request.headers.get("X-Phantombuster-Key") == self.key

    def container(self, request: web.Request) -> FakeContainer | web.Response:
        if not self.authorized(request):
            return self.error(401, "Unauthorized: invalid API key")
        container = self.containers.get(request.query.get("id", ""))
        if container is None:
            return self.error(404, "Container not found")
        return container

    async def launch(self, request: web.Request) -> web.Response:
        if not self.authorized(request):
            return self.error(401, "Unauthorized: invalid API key")
        body = json.loads(await request.read() or b"{}")
        agent = body.get("id")
        if agent not in self.agents:
            return self.error(404, "Agent not found")
        if len(json.dumps(body.get("argument") or {})) > 10_000:
            return self.error(400, "The launch argument is too big.")
        container = FakeContainer(
            id=str(7002310000000000 + len(self.containers)),
            agent_id=agent,
            argument=body.get("argument"),
            polls_left=self.running_polls,
            exit_code=1 if agent in self.crashing else 0,
        )
        self.containers[container.id] = container
        return _json({"containerId": container.id})

    async def fetch(self, request: web.Request) -> web.Response:
        found = self.container(request)
        if isinstance(found, web.Response):
            return found
        data: dict[str, Any] = {
            "id": found.id,
            "agentId": found.agent_id,
            "createdAt": found.created,
            "launchType": "user api call",
        }
        found.polled += 1
        if found.polls_left > 0:
            found.polls_left -= 1
            data["status"] = "starting" if found.polled == 1 else "running"
        else:
            ended = found.exit_code == 0
            data.update(
                status="finished",
                exitCode=found.exit_code,
                endType="finished" if ended else "crashed",
                endedAt=found.created + 4000,
                launchedAt=found.created + 100,
            )
        return _json(data)

    async def result_object(self, request: web.Request) -> web.Response:
        found = self.container(request)
        if isinstance(found, web.Response):
            return found
        if found.polls_left > 0 or found.exit_code:
            return _json({"resultObject": None})
        query = (found.argument or {}).get("search", "")
        rows = [
            {
                "name": f"Lead {i}",
                "company": "Acme",
                "query": query,
                "profileUrl": f"https://www.linkedin.com/in/lead{i}",
            }
            for i in range(3)
        ]
        return _json({"resultObject": json.dumps(rows)})

    async def output(self, request: web.Request) -> web.Response:
        found = self.container(request)
        if isinstance(found, web.Response):
            return found
        text = "Launching...\nOpening the search\n"
        if found.exit_code:
            text += "Error: the session cookie has expired\nProcess finished with an error (exit code: 1)"
        return _json({"output": text, "status": "finished" if found.polls_left == 0 else "running"})
