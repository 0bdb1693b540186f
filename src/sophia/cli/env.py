"""``sophia env``: environments of settings and secrets (Pulumi ESC format), kept by the secrets backend."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Annotated, Any, NoReturn

import orjson
import typer
import yaml

from sophia.cli.common import JsonOption, echo, fail, table
from sophia.errors import ConfigError, SophiaError
from sophia.settings import Settings, load_settings

app = typer.Typer(
    help="Environments (Pulumi ESC format): settings and secrets per dev/staging/production, imports, "
    "rotation, encrypted backups. The active one (--env, $SOPHIA_ENV) becomes Sophia's settings.",
    no_args_is_help=True,
)

EnvOption = Annotated[
    str | None,
    typer.Option(
        "--env",
        "-e",
        help="Environment (default: the active one: --env before the command, $SOPHIA_ENV).",
        show_default=False,
    ),
]
ShowSecrets = Annotated[bool, typer.Option("--show-secrets", help="Print secret values instead of [secret].")]

# The templates `init` writes set one setting only (an environment ranks above sophia.yaml): they show
# the shape (an import, a value the base shares, interpolation), and production's spans carry its name.
BASE = """\
values:
  deployment: sophia
  sophia: {}
"""
PRODUCTION = """\
imports:
  - base
values:
  sophia:
    observe:
      project: ${deployment}-production
"""


def _conf(ctx: typer.Context) -> Settings:
    root = ctx.find_root().obj or {}
    try:
        return load_settings(root.get("config"), use_environment=False)
    except SophiaError as exc:
        _fail(exc)


def _fail(exc: SophiaError) -> NoReturn:
    """Exit 2 for what the command was told (configuration, a missing environment), 1 for the rest."""
    from sophia.secrets.backend import NotFoundError

    fail(exc.message, code=2 if isinstance(exc, (ConfigError, NotFoundError)) else 1)


def _backend(conf: Settings, *, create_key: bool = False) -> Any:
    from sophia.settings.environment import open_backend

    try:
        return open_backend(conf, create_key=create_key)
    except SophiaError as exc:
        _fail(exc)


def _name(ctx: typer.Context, conf: Settings, env: str | None) -> str:
    name = (
        env
        or (ctx.find_root().obj or {}).get("env")
        or os.environ.get("SOPHIA_ENV")
        or conf.secrets.environment
    )
    if not name:
        fail("name the environment: --env NAME (or set $SOPHIA_ENV)", code=2)
    return name


def _announce(conf: Settings, backend: Any, *names: str) -> None:
    """Tell running instances over PostgreSQL that ``names`` changed, so they reload at once (they also
    poll). Where they listen is their storage database: this command's own, and the one each local
    environment's ``sophia.storage.database_url`` names (the servers' settings come from there)."""
    from sophia.live import announce

    urls = {conf.database_url}
    if backend.kind == "local":
        for each in backend.names():
            try:
                values = backend.open(each).values
            except SophiaError:
                continue
            storage = ((values or {}).get("sophia") or {}).get("storage") or {}
            if isinstance(storage, dict) and isinstance(storage.get("database_url"), str):
                urls.add(storage["database_url"])

    async def tell() -> None:
        for url in urls:
            for name in names:
                await announce(url, name)

    try:
        asyncio.run(tell())
    except SophiaError as exc:
        typer.secho(
            f"warning: changed, but could not announce it: {exc.message}", fg=typer.colors.YELLOW, err=True
        )


def _write(conf: Settings, backend: Any, name: str, edit: Any) -> int:
    """Read, edit and write ``name`` (compare-and-swap on its revision, retried once on a conflict)."""
    from sophia.secrets.backend import ConflictError, NotFoundError

    for attempt in range(2):
        try:
            try:
                text, revision = backend.definition(name), backend.revision(name)
            except NotFoundError:
                text, revision = "", 0
            new = backend.put(name, edit(text), expected_revision=revision)
        except ConflictError:
            if attempt:
                raise
            continue
        _announce(conf, backend, name)
        return int(new)
    raise AssertionError("unreachable")


@app.command("init")
def init(
    ctx: typer.Context,
    if_missing: Annotated[
        bool, typer.Option("--if-missing", help="Do nothing where it exists already.")
    ] = False,
) -> None:
    """Create the store's key and two environments: `base` (shared values) and `production` (imports base).

    The key lives in the config dir (mode 0600), or the OS keyring with secrets.keyring, never in the repo."""
    conf = _conf(ctx)
    backend = _backend(conf, create_key=True)
    try:
        existing = set(backend.names())
        for name, text in (("base", BASE), ("production", PRODUCTION)):
            if name in existing:
                if not if_missing:
                    echo(f"{name}: exists (kept)")
                continue
            backend.put(name, text, expected_revision=0)
            echo(f"{name}: created")
    except SophiaError as exc:
        _fail(exc)


@app.command("ls")
def ls(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List the environments and their revisions."""
    conf = _conf(ctx)
    backend = _backend(conf)
    try:
        rows = [{"environment": n, "revision": backend.revision(n)} for n in backend.names()]
    except SophiaError as exc:
        _fail(exc)
    echo(orjson.dumps(rows).decode() if as_json else table(rows, ["environment", "revision"]))


@app.command("set")
def set_(
    ctx: typer.Context,
    path: Annotated[str, typer.Argument(help="Property path, e.g. sophia.providers.openai.api_key.")],
    value: Annotated[
        str | None, typer.Argument(help="The value (YAML: 8090 is a number); omit with --stdin.")
    ] = None,
    secret: Annotated[bool, typer.Option("--secret", help="Store it encrypted; shown as [secret].")] = False,
    string: Annotated[
        bool, typer.Option("--string", help="Take the value as a string, never as YAML.")
    ] = False,
    stdin: Annotated[
        bool,
        typer.Option("--stdin", help="Read the value from standard input (keeps it out of shell history)."),
    ] = False,
    env: EnvOption = None,
) -> None:
    """Set one value of an environment (created if missing)."""
    from sophia.secrets.edit import set_path

    conf = _conf(ctx)
    name = _name(ctx, conf, env)
    raw = sys.stdin.read().rstrip("\n") if stdin else value
    if raw is None:
        fail("give a VALUE or --stdin", code=2)
    parsed: Any = raw if (string or secret) else yaml.safe_load(raw) if raw.strip() else raw
    backend = _backend(conf)
    try:
        revision = _write(conf, backend, name, lambda text: set_path(text, path, parsed, secret=secret))
    except SophiaError as exc:
        _fail(exc)
    echo(f"{name}: {path} set{' (secret)' if secret else ''}, revision {revision}")


@app.command("rm")
def rm(
    ctx: typer.Context,
    path: Annotated[str, typer.Argument(help="Property path to remove.")],
    env: EnvOption = None,
) -> None:
    """Remove one value of an environment."""
    from sophia.secrets.edit import unset_path

    conf = _conf(ctx)
    name = _name(ctx, conf, env)
    backend = _backend(conf)
    try:
        revision = _write(conf, backend, name, lambda text: unset_path(text, path))
    except SophiaError as exc:
        _fail(exc)
    echo(f"{name}: {path} removed, revision {revision}")


def _open(backend: Any, name: str) -> Any:
    try:
        opened = backend.open(name)
    except SophiaError as exc:
        _fail(exc)
    for d in opened.diags:
        where = ":".join(p for p in (d.environment, d.path) if p)
        typer.secho(f"{where}: {d.summary}" if where else d.summary, fg=typer.colors.RED, err=True)
    return opened


@app.command("get")
def get(
    ctx: typer.Context,
    path: Annotated[str | None, typer.Argument(help="Property path (default: every value).")] = None,
    show_secrets: ShowSecrets = False,
    definition: Annotated[
        bool, typer.Option("--definition", help="Print the stored YAML (secrets as ciphertext).")
    ] = False,
    env: EnvOption = None,
) -> None:
    """Print an environment's evaluated values (imports merged, references resolved), or one of them.

    Exit code 1 when the environment has evaluation errors (listed on stderr)."""
    from sophia.secrets.edit import walk

    conf = _conf(ctx)
    name = _name(ctx, conf, env)
    backend = _backend(conf)
    if definition:
        try:
            echo(backend.definition(name).rstrip("\n"))
        except SophiaError as exc:
            _fail(exc)
        return
    opened = _open(backend, name)
    tree = opened.values if show_secrets else opened.redacted
    if path:
        try:
            tree = walk(tree, path)
        except KeyError:
            fail(f"{name} has no value at {path}", code=1)
        except SophiaError as exc:
            _fail(exc)
    if isinstance(tree, (dict, list)):
        echo(orjson.dumps(tree, option=orjson.OPT_INDENT_2).decode())
    else:
        echo(tree if isinstance(tree, str) else orjson.dumps(tree).decode())
    if opened.diags:
        raise typer.Exit(1)


@app.command("diff")
def diff(
    ctx: typer.Context,
    first: Annotated[str, typer.Argument(help="An environment.")],
    second: Annotated[str, typer.Argument(help="Another environment.")],
    show_secrets: ShowSecrets = False,
    as_json: JsonOption = False,
) -> None:
    """The values that differ between two environments (secrets compared, never printed unless asked).

    Exit code 1 when they differ, like diff(1)."""
    from sophia.secrets.edit import diff as compare

    conf = _conf(ctx)
    backend = _backend(conf)
    a, b = _open(backend, first), _open(backend, second)
    shown = {} if show_secrets else {"shown_first": a.redacted, "shown_second": b.redacted}
    changes = compare(a.values, b.values, **shown)
    if as_json:
        echo(orjson.dumps([c.__dict__ for c in changes]).decode())
    else:
        for c in changes:
            if c.kind == "added":
                echo(f"+ {c.path}: {_show(c.after)}")
            elif c.kind == "removed":
                echo(f"- {c.path}: {_show(c.before)}")
            else:
                echo(f"~ {c.path}: {_show(c.before)} -> {_show(c.after)}")
    if changes:
        raise typer.Exit(1)


def _show(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value).decode()


@app.command("run", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def run(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The environment.")],
    command: Annotated[list[str] | None, typer.Argument(help="The command, after --.")] = None,
) -> None:
    """Run a command with the environment's `environmentVariables` set and its `files` written.

    Each entry of `files` is written to a private temporary file (mode 0600, removed afterwards) and
    the variable of that name holds its path, as `esc run` does. The command's exit code is returned."""
    conf = _conf(ctx)
    argv = list(command or []) + list(ctx.args)
    if not argv:
        fail("give the command after --, e.g. sophia env run production -- sophia run", code=2)
    opened = _open(_backend(conf), name)
    if opened.diags:
        fail(f"{name} does not evaluate (above): the command was not run", code=1)
    child_env = dict(os.environ)
    child_env.update(opened.environment_variables)
    with tempfile.TemporaryDirectory(prefix="sophia-env-") as folder:
        for i, (var, content) in enumerate(opened.files.items()):
            target = Path(folder) / f"{i}-{var}"
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(content)
            child_env[var] = str(target)
        try:
            code = subprocess.call(argv, env=child_env)
        except OSError as exc:
            fail(f"cannot run {argv[0]}: {exc.strerror}", code=127)
    raise typer.Exit(code)


@app.command("export")
def export(
    ctx: typer.Context,
    fmt: Annotated[
        str,
        typer.Option(
            "--format", "-f", help="dotenv (environmentVariables), json (values) or esc (the definition)."
        ),
    ] = "dotenv",
    env: EnvOption = None,
) -> None:
    """Print an environment for another tool. dotenv and json reveal secrets (you asked for them);
    esc prints the definition with secrets as ciphertext."""
    from sophia.secrets.edit import to_dotenv

    conf = _conf(ctx)
    name = _name(ctx, conf, env)
    backend = _backend(conf)
    if fmt == "esc":
        try:
            echo(backend.definition(name).rstrip("\n"))
        except SophiaError as exc:
            _fail(exc)
        return
    if fmt not in ("dotenv", "json"):
        fail("--format is dotenv, json or esc", code=2)
    opened = _open(backend, name)
    if opened.diags:
        raise typer.Exit(1)
    try:
        text = (
            to_dotenv(opened.environment_variables)
            if fmt == "dotenv"
            else orjson.dumps(opened.values, option=orjson.OPT_INDENT_2).decode() + "\n"
        )
    except SophiaError as exc:
        _fail(exc)
    sys.stdout.write(text)


@app.command("import")
def import_(
    ctx: typer.Context,
    source: Annotated[
        str,
        typer.Argument(
            help="A .env file, `environ` (this process's variables), or a file of `gh secret list` output (`-` reads stdin)."
        ),
    ],
    kind: Annotated[str, typer.Option("--from", help="dotenv, environ or gh.")] = "dotenv",
    rules: Annotated[
        Path | None,
        typer.Option("--rules", help="YAML rules mapping flat names to paths (see docs/secrets.md)."),
    ] = None,
    prefix: Annotated[
        str | None, typer.Option("--prefix", help="With --from environ: only variables starting with this.")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print where each name would go; write nothing.")
    ] = False,
    env: EnvOption = None,
) -> None:
    """Import flat NAME=value pairs as values of an environment, placed by the rule file.

    A `gh secret list` listing gives names only (GitHub never shows values): each value is read from
    the variable of that name in this process (where GitHub Actions puts secrets); names without one
    are reported and skipped."""
    from sophia.secrets.edit import ImportRules, parse_dotenv, parse_gh_secret_list, set_path

    conf = _conf(ctx)
    name = _name(ctx, conf, env)
    try:
        plan = ImportRules.load(rules)
        text = (
            ""
            if kind == "environ"
            else (sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8"))
        )
        missing: list[str] = []
        if kind == "dotenv":
            pairs = parse_dotenv(text)
        elif kind == "environ":
            pairs = {k: v for k, v in os.environ.items() if not prefix or k.startswith(prefix)}
        elif kind == "gh":
            pairs = {}
            for n in parse_gh_secret_list(text):
                if n in os.environ:
                    pairs[n] = os.environ[n]
                else:
                    missing.append(n)
        else:
            fail("--from is dotenv, environ or gh", code=2)
        placed = plan.plan(pairs)
    except OSError as exc:
        fail(f"cannot read {source}: {exc.strerror}", code=2)
    except SophiaError as exc:
        _fail(exc)
    for flat, path, secret in placed:
        echo(f"{flat} -> {path}{' (secret)' if secret else ''}")
    for flat in missing:
        typer.secho(
            f"{flat}: listed, but no variable of that name holds its value here: skipped",
            fg=typer.colors.YELLOW,
            err=True,
        )
    if dry_run or not placed:
        return

    def edit(text: str) -> str:
        for flat, path, secret in placed:
            text = set_path(text, path, pairs[flat], secret=secret)
        return text

    try:
        revision = _write(conf, _backend(conf), name, edit)
    except SophiaError as exc:
        _fail(exc)
    echo(f"{name}: {len(placed)} value(s) imported, revision {revision}")


@app.command("rotate")
def rotate(
    ctx: typer.Context,
    path: Annotated[
        str, typer.Argument(help="Property path of a rotated credential (an fn::rotate) or of a secret.")
    ],
    value: Annotated[
        bool, typer.Option("--stdin", help="A plain secret: read its new value from standard input.")
    ] = False,
    env: EnvOption = None,
) -> None:
    """Rotate a credential without a failed request.

    An `fn::rotate` credential (e.g. `fn::rotate::postgres`, two roles taking turns) gets a new value
    from its rotator while the previous one stays valid until the next rotation; running services
    pick the new one up without a restart. A plain secret (a provider key made at the provider)
    takes the new value from --stdin: keep the old key valid at the provider until `sophia env get`
    on every instance shows the new revision, then revoke it."""
    from sophia.secrets.edit import rotate_target, set_path

    conf = _conf(ctx)
    name = _name(ctx, conf, env)
    backend = _backend(conf)
    try:
        target = rotate_target(backend.definition(name), path)
        if target is not None:
            opened = backend.open(name, rotate=[target])
            if opened.diags:
                for d in opened.diags:
                    typer.secho(f"{d.path}: {d.summary}", fg=typer.colors.RED, err=True)
                raise typer.Exit(1)
            _announce(conf, backend, name)
            echo(f"{name}: {target} rotated, revision {opened.revision}")
            return
        if not value:
            fail(f"{path} is not rotated by a rotator: give the new value with --stdin", code=2)
        new = sys.stdin.read().rstrip("\n")
        if not new:
            fail("the new value is empty", code=2)
        revision = _write(conf, backend, name, lambda text: set_path(text, path, new, secret=True))
    except SophiaError as exc:
        _fail(exc)
    echo(f"{name}: {path} replaced, revision {revision}; revoke the old value once every instance shows it")


def _local(backend: Any) -> Any:
    from sophia.secrets.store import LocalStore

    if not isinstance(backend, LocalStore):
        fail("backup and restore are for the local store (Pulumi ESC keeps its own revisions)", code=2)
    return backend


@app.command("backup")
def backup(
    ctx: typer.Context,
    dest: Annotated[Path, typer.Argument(help="The archive to write.")],
    passphrase: Annotated[
        bool,
        typer.Option("--passphrase", help="Encrypt with a passphrase (asked) instead of the store's key."),
    ] = False,
) -> None:
    """Write every environment to one encrypted, authenticated archive (mode 0600)."""
    from sophia.secrets.archive import backup as write_backup

    conf = _conf(ctx)
    store = _local(_backend(conf))
    secret = typer.prompt("Passphrase", hide_input=True, confirmation_prompt=True) if passphrase else None
    try:
        manifest = write_backup(store, dest, secret)
    except SophiaError as exc:
        _fail(exc)
    echo(f"{len(manifest.environments)} environment(s) written to {dest}")


@app.command("restore")
def restore(
    ctx: typer.Context,
    archive: Annotated[Path, typer.Argument(help="An archive `sophia env backup` wrote.")],
    passphrase: Annotated[
        bool, typer.Option("--passphrase", help="It was encrypted with a passphrase (asked).")
    ] = False,
    replace: Annotated[
        bool, typer.Option("--replace", help="Also remove environments the archive does not hold.")
    ] = False,
) -> None:
    """Restore an archive: all of it is decrypted and verified before any file is replaced."""
    from sophia.secrets.archive import restore as read_backup

    conf = _conf(ctx)
    store = _local(_backend(conf))
    secret = typer.prompt("Passphrase", hide_input=True) if passphrase else None
    try:
        manifest = read_backup(store, archive, secret, replace=replace)
    except SophiaError as exc:
        _fail(exc)
    names = [e.name for e in manifest.environments]
    _announce(conf, store, *names)
    echo(f"restored {len(names)} environment(s): {', '.join(names)}")
