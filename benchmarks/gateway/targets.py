"""The servers under test: how to configure, start and address each one.

Each gateway runs with one worker process and proxies to the same nginx upstream, which
answers every chat completion at once with a fixed body. nginx itself, called directly,
is the floor. Sophia runs twice: with the response cache off (the pass-through) and with
its defaults, the cache on.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from load import TRAFFIC, Traffic
from processes import LOOPBACK, Service, StartError, free_port

CHAT_PATH = "/v1/chat/completions"
HEALTH_TIMEOUT_SECONDS = 120.0  # LiteLLM imports for 10-20 s on these machines.
CLI_TIMEOUT_SECONDS = 120.0

UPSTREAM_MODEL = "bench-model"
UPSTREAM_COMPLETION = {
    "id": "chatcmpl-bench",
    "object": "chat.completion",
    "created": 1700000000,
    "model": UPSTREAM_MODEL,
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hello! How can I help you today?"},
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 9, "completion_tokens": 9, "total_tokens": 18},
}
UPSTREAM_MODELS = {
    "object": "list",
    "data": [{"id": UPSTREAM_MODEL, "object": "model", "created": 1700000000, "owned_by": "bench"}],
}

# Sophia's key gets limits and a budget far above what the benchmark can reach, so that
# the checks run on every request without ever refusing one.
SOPHIA_KEY_RPM = 100_000_000
SOPHIA_KEY_TPM = 1_000_000_000
SOPHIA_KEY_DAILY_BUDGET = 1_000_000
SOPHIA_KEY_LIMITS = (
    "--rpm", str(SOPHIA_KEY_RPM),
    "--tpm", str(SOPHIA_KEY_TPM),
    "--budget-daily", str(SOPHIA_KEY_DAILY_BUDGET),
)  # fmt: skip
LITELLM_MASTER_KEY = "sk-bench-master"


@dataclass
class Context:
    """What every target needs to start: a scratch folder, the tools and the upstream."""

    workdir: Path
    peers_dir: Path
    sophia_bin: Path
    nginx_bin: str
    upstream: Service | None = None
    upstream_port: int = 0
    started: list[Service] = field(default_factory=list)
    # `run.py --before REF`: Sophia's source at REF (a git worktree), run by the same venv
    before_src: Path | None = None
    before_ref: str = ""

    @property
    def upstream_base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.upstream_port}/v1"

    def launch(
        self,
        name: str,
        command: list[str],
        port: int,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> Service:
        """Start a server and remember it, so that it is stopped whatever happens next."""
        service = Service.start(name, command, self.workdir / f"{name}.log", env or self.env(), cwd)
        service.ports.append(port)
        self.started.append(service)
        return service

    def env(self) -> dict[str, str]:
        """The parent's environment, with every loopback call kept off any HTTP proxy."""
        env = dict(os.environ)
        env["NO_PROXY"] = env["no_proxy"] = f"{LOOPBACK},localhost"
        return env

    def before_env(self) -> dict[str, str]:
        """The environment that runs Sophia at ``before_ref``: its source first on the path (the venv's
        editable install is a plain path entry, which PYTHONPATH precedes)."""
        if self.before_src is None:
            raise StartError("the before targets need `run.py --before REF`")
        env = self.env()
        env["PYTHONPATH"] = str(self.before_src)
        return env


@dataclass
class Target:
    """A running server the load generator can call."""

    key: str
    label: str
    port: int
    model: str
    service: Service
    version: str
    headers: dict[str, str] = field(default_factory=dict)
    traffic: tuple[Traffic, ...] = TRAFFIC  # the kinds of load it gets (LiteLLM: fixed only)
    cache_on: bool = False  # Sophia's response cache answers (x-sophia-cache) and is queried
    admin_headers: dict[str, str] = field(default_factory=dict)  # for Sophia's /admin/cache

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}{CHAT_PATH}"

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"


@dataclass(frozen=True)
class TargetSpec:
    key: str
    label: str
    start: Callable[[Context], Target]


# --- nginx: the upstream, and the floor ---------------------------------------------------

NGINX_CONFIG = """\
worker_processes 1;
daemon off;
pid {workdir}/nginx.pid;
error_log {workdir}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {workdir}/nginx-body;
    proxy_temp_path {workdir}/nginx-proxy;
    fastcgi_temp_path {workdir}/nginx-fastcgi;
    uwsgi_temp_path {workdir}/nginx-uwsgi;
    scgi_temp_path {workdir}/nginx-scgi;
    keepalive_requests 1000000;
    keepalive_timeout 75s;
    server {{
        listen {host}:{port};
        location {chat_path} {{
            default_type application/json;
            return 200 '{body}';
        }}
        location = /v1/models {{
            default_type application/json;
            return 200 '{models}';
        }}
        location = /health {{
            return 200 'ok';
        }}
        location = /v1/traces {{
            default_type application/x-protobuf;
            return 200 '';
        }}
        location / {{
            return 404;
        }}
    }}
}}
"""


def start_upstream(ctx: Context) -> None:
    """Start nginx with its own configuration in the scratch folder, one worker."""
    port = free_port()
    config = ctx.workdir / "nginx.conf"
    config.write_text(
        NGINX_CONFIG.format(
            workdir=ctx.workdir,
            host=LOOPBACK,
            port=port,
            chat_path=CHAT_PATH,
            body=_compact_json(UPSTREAM_COMPLETION),
            models=_compact_json(UPSTREAM_MODELS),
        )
    )
    command = [
        ctx.nginx_bin,
        "-p",
        str(ctx.workdir),
        "-c",
        str(config),
        "-e",
        str(ctx.workdir / "nginx-error.log"),
    ]
    service = ctx.launch("nginx", command, port)
    ctx.upstream, ctx.upstream_port = service, port
    service.wait_until_healthy(f"http://{LOOPBACK}:{port}/health", HEALTH_TIMEOUT_SECONDS)


def start_nginx_direct(ctx: Context) -> Target:
    if ctx.upstream is None:
        raise StartError("the nginx upstream is not running")
    return Target(
        key="nginx",
        label="nginx direct (floor)",
        port=ctx.upstream_port,
        model=UPSTREAM_MODEL,
        service=ctx.upstream,
        version=_command_version([ctx.nginx_bin, "-v"]).rsplit("/", 1)[-1],  # "nginx version: nginx/1.22.1"
    )


# --- LiteLLM proxy ---------------------------------------------------------------------------

LITELLM_CONFIG = """\
model_list:
  - model_name: {model}
    litellm_params:
      model: openai/{model}
      api_base: {api_base}
      api_key: sk-fake-upstream
general_settings:
  master_key: {master_key}
"""


def start_litellm(ctx: Context) -> Target:
    venv_bin = ctx.peers_dir / "litellm-venv" / "bin"
    _require(venv_bin / "litellm", "LiteLLM")
    config = ctx.workdir / "litellm.yaml"
    config.write_text(
        LITELLM_CONFIG.format(
            model=UPSTREAM_MODEL, api_base=ctx.upstream_base_url, master_key=LITELLM_MASTER_KEY
        )
    )
    port = free_port()
    env = ctx.env()
    env["LITELLM_MASTER_KEY"] = LITELLM_MASTER_KEY
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"  # Do not try to fetch prices from the internet.
    command = [str(venv_bin / "litellm"), "--config", str(config), "--host", LOOPBACK]
    command += ["--port", str(port), "--num_workers", "1"]
    service = ctx.launch("litellm", command, port, env)
    service.wait_until_healthy(f"http://{LOOPBACK}:{port}/health/liveliness", HEALTH_TIMEOUT_SECONDS)
    return Target(
        key="litellm",
        label="LiteLLM proxy",
        port=port,
        model=UPSTREAM_MODEL,
        service=service,
        version=_python_package_version(venv_bin / "python", "litellm"),
        headers={"Authorization": f"Bearer {LITELLM_MASTER_KEY}"},
        traffic=("fixed",),  # a distant reference at 0.1x Portkey: its fixed row is enough
    )


# --- Portkey gateway -------------------------------------------------------------------------


def start_portkey(ctx: Context) -> Target:
    package = ctx.peers_dir / "portkey" / "node_modules" / "@portkey-ai" / "gateway"
    _require(package / "build" / "start-server.js", "Portkey gateway")
    port = free_port()
    # Portkey has no host option: it listens on every interface. The load goes to 127.0.0.1.
    command = ["node", str(package / "build" / "start-server.js"), f"--port={port}"]
    service = ctx.launch("portkey", command, port, cwd=package)
    service.wait_until_healthy(f"http://{LOOPBACK}:{port}/", HEALTH_TIMEOUT_SECONDS)
    version = json.loads((package / "package.json").read_text())["version"]
    return Target(
        key="portkey",
        label="Portkey gateway",
        port=port,
        model=UPSTREAM_MODEL,
        service=service,
        version=str(version),
        headers={
            "x-portkey-provider": "openai",
            "x-portkey-custom-host": ctx.upstream_base_url,
            "Authorization": "Bearer sk-fake-upstream",
        },
    )


# --- Sophia ----------------------------------------------------------------------------------

SOPHIA_MODEL = f"vllm/{UPSTREAM_MODEL}"
# Defaults but for the upstream, the priced model (so the ledger books every request) and the
# ports (the MCP server that `sophia run` serves beside the gateway gets a free one too).
SOPHIA_CONFIG = """\
home: {home}
gateway: {{host: {host}, port: {port}}}
mcp: {{ports: {{ai: {mcp_port}, data: {data_port}, bi: {bi_port}}}}}
providers:
  vllm: {{base_url: "{base_url}"}}
models:
  {model}: {{input_price: 1.0, output_price: 2.0, context_window: 8192}}
storage: {{}}
"""
SOPHIA_CACHE_OFF = "cache: {enabled: false}  # the pass-through: the proxy alone, no response cache\n"


def start_sophia(ctx: Context) -> Target:
    """Sophia with keys, budgets, rate limits, the ledger and routing on; no local model, no response cache."""
    return _start_sophia(ctx, "sophia", "Sophia", cache_on=False)


def start_sophia_cache(ctx: Context) -> Target:
    """The same with Sophia's defaults: the response cache on (exact and semantic), no `cache:` section."""
    return _start_sophia(ctx, "sophia-cache", "Sophia, cache on", cache_on=True)


SOPHIA_TELEMETRY_OFF = "observe: {tracing: false}  # no spans: what telemetry costs, against `sophia`\n"


def start_sophia_notel(ctx: Context) -> Target:
    """The pass-through with tracing off (spans are on by default): the same run shows telemetry's cost."""
    return _start_sophia(
        ctx, "sophia-notel", "Sophia, tracing off", cache_on=False, extra=SOPHIA_TELEMETRY_OFF
    )


def start_sophia_otlp(ctx: Context) -> Target:
    """The pass-through also exporting every span over OTLP/HTTP (to nginx, which answers 200 at once)."""
    extra = f'observe: {{otlp_endpoint: "{ctx.upstream_base_url}/traces"}}  # spans over OTLP too\n'
    return _start_sophia(ctx, "sophia-otlp", "Sophia, spans over OTLP", cache_on=False, extra=extra)


def start_sophia_before(ctx: Context) -> Target:
    """The pass-through at an earlier commit (`--before REF`), for a before/after in the same run."""
    return _start_sophia(ctx, "sophia-before", "Sophia", cache_on=False, env=ctx.before_env())


def start_sophia_cache_before(ctx: Context) -> Target:
    """Sophia with its defaults at an earlier commit (`--before REF`)."""
    return _start_sophia(ctx, "sophia-cache-before", "Sophia, cache on", cache_on=True, env=ctx.before_env())


def _start_sophia(
    ctx: Context, key: str, label: str, cache_on: bool, env: dict[str, str] | None = None, extra: str = ""
) -> Target:
    _require(ctx.sophia_bin, "Sophia")
    port, mcp_port, data_port, bi_port = free_port(), free_port(), free_port(), free_port()
    config = ctx.workdir / f"{key}.yaml"
    text = SOPHIA_CONFIG.format(
        home=ctx.workdir / f"{key}-home",
        host=LOOPBACK,
        port=port,
        mcp_port=mcp_port,
        data_port=data_port,
        bi_port=bi_port,
        base_url=ctx.upstream_base_url,
        model=SOPHIA_MODEL,
    )
    config.write_text((text if cache_on else text + SOPHIA_CACHE_OFF) + extra)
    secret = _create_sophia_key(ctx, config, "bench", *SOPHIA_KEY_LIMITS, env=env)
    admin = _create_sophia_key(ctx, config, "bench-admin", "--admin", env=env) if cache_on else None
    command = [str(ctx.sophia_bin), "run", "--config", str(config)]
    service = ctx.launch(key, command, port, env=env)
    service.ports.extend((mcp_port, data_port, bi_port))
    service.wait_until_healthy(f"http://{LOOPBACK}:{port}/health", HEALTH_TIMEOUT_SECONDS)
    return Target(
        key=key,
        label=label,
        port=port,
        model=SOPHIA_MODEL,
        service=service,
        version=_python_package_version(ctx.sophia_bin.parent / "python", "sophia")
        + (f" @ {ctx.before_ref}" if env is not None else ""),
        headers={"Authorization": f"Bearer {secret}"},
        cache_on=cache_on,
        admin_headers={"Authorization": f"Bearer {admin}"} if admin else {},
    )


def _create_sophia_key(
    ctx: Context, config: Path, name: str, *options: str, env: dict[str, str] | None = None
) -> str:
    command = [str(ctx.sophia_bin), "keys", "create", "--config", str(config), "--name", name, *options]
    command.append("--print-secret-only")
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        env=env or ctx.env(),
        timeout=CLI_TIMEOUT_SECONDS,
        check=False,
    )
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        errors = done.stderr.strip().splitlines() or ["no output"]
        raise StartError(
            f"`sophia keys create` failed (exit {done.returncode}): {errors[-1]}\n" + "\n".join(errors)
        )
    return lines[-1].strip()


# --- the table -------------------------------------------------------------------------------

#: targets measured only with `run.py --before REF`
BEFORE_TARGETS = ("sophia-before", "sophia-cache-before")
#: targets measured only when asked for by name (--targets): the telemetry comparison
OPT_IN_TARGETS = ("sophia-notel", "sophia-otlp")

TARGETS: dict[str, TargetSpec] = {
    spec.key: spec
    for spec in (
        TargetSpec("nginx", "nginx direct (floor)", start_nginx_direct),
        TargetSpec("sophia", "Sophia", start_sophia),
        TargetSpec("sophia-cache", "Sophia, cache on", start_sophia_cache),
        TargetSpec("sophia-notel", "Sophia, tracing off", start_sophia_notel),
        TargetSpec("sophia-otlp", "Sophia, spans over OTLP", start_sophia_otlp),
        TargetSpec("sophia-before", "Sophia at --before", start_sophia_before),
        TargetSpec("sophia-cache-before", "Sophia, cache on, at --before", start_sophia_cache_before),
        TargetSpec("litellm", "LiteLLM proxy", start_litellm),
        TargetSpec("portkey", "Portkey gateway", start_portkey),
    )
}


def _compact_json(value: object) -> str:
    """JSON for an nginx single-quoted string: no quote or variable sign may appear in it."""
    text = json.dumps(value, separators=(",", ":"))
    if "'" in text or "$" in text:
        raise ValueError(f"cannot be served by nginx `return`: {text}")
    return text


def _require(path: Path, what: str) -> None:
    if not path.exists():
        raise StartError(f"{what} is not installed ({path} is missing): run benchmarks/gateway/setup.sh")


def _python_package_version(python: Path, distribution: str) -> str:
    code = f"import importlib.metadata as m; print(m.version({distribution!r}))"
    return _command_version([str(python), "-c", code])


def _command_version(command: list[str]) -> str:
    """The first line a `--version`-like command prints (nginx and wrk print it on stderr)."""
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=CLI_TIMEOUT_SECONDS, check=False
        )
    except OSError as error:
        return f"unknown ({error})"
    output = (done.stdout.strip() or done.stderr.strip()).splitlines()
    return output[0].strip() if output and done.returncode == 0 else "unknown"
