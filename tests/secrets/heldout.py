"""A held-out set for the secrets scanner, written apart from ``labelled.py`` and never used to tune it.

``labelled.py`` is the set the rules were developed on, so its figures are an upper bound. This one
draws its FAKE keys with its own code (bytes from a seeded generator, encoded in each vendor's
published alphabet and length; GitHub's CRC32 checksum computed here again) and plants them in other
documents: Terraform, docker-compose, GitHub Actions, Helm values, Java properties, systemd units,
CSV exports, Jupyter notebooks, VS Code and Postman JSON, Go/Rust/Ruby/Java/PowerShell/TypeScript
literals, Python reprs, git remotes and connection URLs, nginx and Apache access logs, Python and
Java stack traces, HTTP request dumps, multi-line JSON logs, journald lines and shell history.

Each ``Doc`` says which of the five contexts it belongs to (code, config, json, url, log), which
template family made it, and for each planted secret whether it is **shaped** (a vendor prefix or
structure a rule can know) and whether a secret-like **name** is bound to it. Shapeless values
(Mistral, Cohere, Azure and Together hex keys, Twilio auth tokens, AWS secret keys, passwords) with
no name near them cannot be told from any other random string by construction: they are counted
apart, never mixed into the recall the targets speak of.
"""

from __future__ import annotations

import base64
import json
import random
import string
import urllib.parse
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

CONTEXTS = ("code", "config", "json", "url", "log")
LOWER = string.ascii_lowercase
UPPER = string.ascii_uppercase
DIGITS = string.digits
B62 = DIGITS + UPPER + LOWER  # GitHub's checksum alphabet order
B64URL = UPPER + LOWER + DIGITS + "-_"


@dataclass(frozen=True)
class Planted:
    kind: str
    start: int
    end: int
    shaped: bool
    named: bool


@dataclass
class Doc:
    context: str
    family: str
    text: str
    planted: list[Planted] = field(default_factory=list)


class Keys:
    """Key text in each vendor's published shape, from its own seeded generator."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def pick(self, alphabet: str, n: int) -> str:
        # one byte per character, rejection-sampled so every character of the alphabet is as likely
        out: list[str] = []
        limit = 256 - 256 % len(alphabet)
        while len(out) < n:
            for byte in self.rng.randbytes(n):
                if byte < limit and len(out) < n:
                    out.append(alphabet[byte % len(alphabet)])
        return "".join(out)

    def hex(self, n: int) -> str:
        return self.rng.randbytes((n + 1) // 2).hex()[:n]

    def b64(self, n_bytes: int, *, url: bool = False) -> str:
        raw = self.rng.randbytes(n_bytes)
        return (base64.urlsafe_b64encode(raw) if url else base64.b64encode(raw)).decode()

    def alnum(self, n: int) -> str:
        return self.pick(UPPER + LOWER + DIGITS, n)

    def github_classic(self) -> str:
        body = self.alnum(30)
        crc, check = zlib.crc32(body.encode()), ""
        for _ in range(6):
            crc, digit = divmod(crc, 62)
            check = B62[digit] + check
        return self.rng.choice(["ghp_", "gho_", "ghs_", "ghu_"]) + body + check

    def openai(self) -> str:
        if self.rng.random() < 0.15:
            return f"sk-{self.alnum(20)}T3BlbkFJ{self.alnum(20)}"  # legacy user key
        half = self.rng.choice([58, 74])
        scope = self.rng.choice(["proj", "proj", "proj", "svcacct", "admin"])
        return f"sk-{scope}-{self.pick(B64URL, half)}T3BlbkFJ{self.pick(B64URL, half)}"

    def jwt(self) -> str:
        def seg(obj: dict[str, object]) -> str:
            return (
                base64.urlsafe_b64encode(json.dumps(obj, separators=(",", ":")).encode()).decode().rstrip("=")
            )

        claims = {"iss": "https://auth.acme.test/", "sub": f"auth0|{self.hex(24)}", "aud": "api",
                  "exp": self.rng.randrange(1_790_000_000, 1_900_000_000), "scope": "read:all"}  # fmt: skip
        head = seg({"alg": "RS256", "typ": "JWT", "kid": self.alnum(12)})
        return f"{head}.{seg(claims)}.{self.b64(256, url=True).rstrip('=')}"

    def pem(self) -> str:
        label = self.rng.choice(["RSA PRIVATE KEY", "PRIVATE KEY", "EC PRIVATE KEY", "OPENSSH PRIVATE KEY"])
        body = self.b64(self.rng.choice([121, 1190, 1217]))
        rows = [body[i : i + 64] for i in range(0, len(body), 64)]
        return "\n".join([f"-----BEGIN {label}-----", *rows, f"-----END {label}-----"])

    def password(self) -> str:
        if self.rng.random() < 0.25:  # chosen by a person: words, digits, a symbol
            word = self.rng.choice(["Falcon", "Harbor", "Copper", "Meadow", "Quartz", "Tundra"])
            return f"{word}{self.rng.randrange(10, 99)}{self.rng.choice('!#$%&*?@')}{self.pick(UPPER + LOWER, 5)}"
        return self.pick(UPPER + LOWER + DIGITS + "!#$%&*+-.=?@^_~", self.rng.randrange(16, 33))


def _shaped_makers(k: Keys) -> dict[str, Callable[[], str]]:
    r = k.rng
    return {
        "openai": k.openai,
        "anthropic": lambda: f"sk-ant-{r.choice(['api03', 'api03', 'admin01'])}-{k.pick(B64URL, 93)}AA",
        "openrouter": lambda: "sk-or-v1-" + k.hex(64),
        "huggingface": lambda: "hf_" + k.pick(UPPER + LOWER, 34),
        "github": lambda: (
            k.github_classic() if r.random() < 0.6 else f"github_pat_11{k.alnum(20)}_{k.alnum(59)}"
        ),
        "gitlab": lambda: "glpat-" + k.pick(B64URL, 20),
        "pulumi": lambda: "pul-" + k.hex(40),
        "aws-access-key-id": lambda: r.choice(["AKIA", "AKIA", "ASIA"]) + k.pick(UPPER + "234567", 16),
        "slack": lambda: (
            f"xoxb-{k.pick(DIGITS, 12)}-{k.pick(DIGITS, 13)}-{k.alnum(24)}"
            if r.random() < 0.7
            else f"xapp-1-A{k.pick(UPPER + DIGITS, 10)}-{k.pick(DIGITS, 13)}-{k.hex(64)}"
        ),
        "slack-webhook": lambda: (
            f"https://hooks.slack.com/services/T{k.pick(UPPER + DIGITS, 10)}/B{k.pick(UPPER + DIGITS, 10)}/{k.alnum(24)}"
        ),
        "stripe": lambda: (
            f"{r.choice(['sk_live_51', 'rk_live_51', 'sk_test_51'])}{k.alnum(97)}"
            if r.random() < 0.7
            else "whsec_" + k.alnum(32)
        ),
        "google-api-key": lambda: "AIzaSy" + k.pick(B64URL, 33),
        "google-oauth": lambda: "GOCSPX-" + k.pick(B64URL, 28),
        "npm": lambda: "npm_" + k.alnum(36),
        "pypi": lambda: "pypi-AgEIcHlwaS5vcmc" + k.b64(110, url=True).rstrip("="),
        "docker": lambda: "dckr_pat_" + k.pick(B64URL, 27),
        "digitalocean": lambda: "dop_v1_" + k.hex(64),
        "databricks": lambda: "dapi" + k.hex(32),
        "shopify": lambda: r.choice(["shpat_", "shpss_", "shpca_"]) + k.hex(32),
        "twilio": lambda: "SK" + k.hex(32),
        "sendgrid": lambda: f"SG.{k.pick(B64URL, 22)}.{k.pick(B64URL, 43)}",
        "mailgun": lambda: "key-" + k.hex(32),
        "postman": lambda: f"PMAK-{k.hex(24)}-{k.hex(34)}",
        "linear": lambda: "lin_api_" + k.alnum(40),
        "notion": lambda: "ntn_" + k.pick(DIGITS, 11) + k.alnum(35),
        "groq": lambda: "gsk_" + k.alnum(52),
        "xai": lambda: "xai-" + k.alnum(80),
        "perplexity": lambda: "pplx-" + k.alnum(48),
        "replicate": lambda: "r8_" + k.alnum(37),
        "tavily": lambda: "tvly-" + r.choice(["", "dev-"]) + k.alnum(32),
        "fireworks": lambda: "fw_" + k.alnum(24),
        "langsmith": lambda: f"lsv2_{r.choice(['pt', 'sk'])}_{k.hex(32)}_{k.hex(10)}",
        "sentry": lambda: "sntryu_" + k.hex(64),
        "grafana": lambda: f"glsa_{k.alnum(32)}_{k.hex(8)}",
        "jwt": k.jwt,
        "deepseek": lambda: "sk-" + k.hex(32),
        "cerebras": lambda: "csk-" + k.pick(LOWER + DIGITS, 48),
        "together": lambda: "tgp_v1_" + k.pick(B64URL, 43),
        "sophia": lambda: "sk-sophia-" + k.b64(32, url=True).rstrip("="),
        "azure-storage": lambda: k.b64(64),
    }


def _shapeless_makers(k: Keys) -> dict[str, Callable[[], str]]:
    return {
        "mistral": lambda: k.alnum(32),
        "cohere": lambda: k.alnum(40),
        "azure-openai": lambda: k.hex(32),
        "together-legacy": lambda: k.hex(64),
        "twilio-auth-token": lambda: k.hex(32),
        "aws-secret-access-key": lambda: k.pick(UPPER + LOWER + DIGITS + "+/", 40),
        "password": k.password,
    }


#: the environment variable a vendor's documentation tells people to set (a secret-like name)
ENV = {
    "openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY", "openrouter": "OPENROUTER_API_KEY",
    "huggingface": "HUGGINGFACEHUB_API_TOKEN", "github": "GH_TOKEN", "gitlab": "GITLAB_PRIVATE_TOKEN",
    "pulumi": "PULUMI_ACCESS_TOKEN", "aws-access-key-id": "AWS_ACCESS_KEY_ID", "slack": "SLACK_APP_TOKEN",
    "slack-webhook": "SLACK_WEBHOOK_URL", "stripe": "STRIPE_API_KEY", "google-api-key": "GEMINI_API_KEY",
    "google-oauth": "OAUTH_CLIENT_SECRET", "npm": "NODE_AUTH_TOKEN", "pypi": "TWINE_PASSWORD",
    "docker": "DOCKER_PASSWORD", "digitalocean": "DIGITALOCEAN_ACCESS_TOKEN", "databricks": "DATABRICKS_TOKEN",
    "shopify": "SHOPIFY_API_SECRET", "twilio": "TWILIO_API_KEY", "sendgrid": "SENDGRID_API_KEY",
    "mailgun": "MAILGUN_API_KEY", "postman": "POSTMAN_API_KEY", "linear": "LINEAR_API_KEY",
    "notion": "NOTION_API_KEY", "groq": "GROQ_API_KEY", "xai": "XAI_API_KEY", "perplexity": "PPLX_API_KEY",
    "replicate": "REPLICATE_API_TOKEN", "tavily": "TAVILY_API_KEY", "fireworks": "FIREWORKS_API_KEY",
    "langsmith": "LANGCHAIN_API_KEY", "sentry": "SENTRY_AUTH_TOKEN", "grafana": "GRAFANA_SERVICE_ACCOUNT_TOKEN",
    "jwt": "ACCESS_TOKEN", "deepseek": "DEEPSEEK_API_KEY", "cerebras": "CEREBRAS_API_KEY",
    "together": "TOGETHER_API_KEY", "sophia": "SOPHIA_API_KEY", "azure-storage": "AZURE_STORAGE_KEY",
    "mistral": "MISTRAL_API_KEY", "cohere": "CO_API_KEY", "azure-openai": "AZURE_OPENAI_API_KEY",
    "together-legacy": "TOGETHER_API_KEY", "twilio-auth-token": "TWILIO_AUTH_TOKEN",
    "aws-secret-access-key": "AWS_SECRET_ACCESS_KEY", "password": "POSTGRES_PASSWORD", "private-key": "TLS_KEY",
}  # fmt: skip


@dataclass(frozen=True)
class Template:
    context: str
    family: str
    text: str  # {k} the key; {ENV} {snake} {camel} {dot} its name spelt four ways; {vendor}; {ts}
    named: bool  # a secret-like name is bound to the value


def _t(context: str, family: str, named: bool, *texts: str) -> list[Template]:
    return [Template(context, family, text, named) for text in texts]


TEMPLATES: list[Template] = [
    *_t("code", "go", True, 'const {camel} = "{k}"\n', '\tos.Setenv("{ENV}", "{k}")\n'),
    *_t("code", "go", False, 'client := {vendor}.NewClient("{k}")\n'),
    *_t("code", "rust", True, 'let {snake} = "{k}";\n', '    .header("x-api-key", "{k}")\n'),
    *_t("code", "ruby", True, 'ENV["{ENV}"] ||= "{k}"\n', "  config.{snake} = '{k}'\n"),
    *_t(
        "code",
        "java",
        True,
        'private static final String {ENV} = "{k}";\n',
        'props.setProperty("{dot}", "{k}");\n',
    ),
    *_t(
        "code",
        "powershell",
        True,
        '$env:{ENV} = "{k}"\n',
        '$Headers = @{{ "Authorization" = "Bearer {k}" }}\n',
    ),
    *_t(
        "code",
        "typescript",
        True,
        "export const {camel}: string = '{k}';\n",
        'await fetch(url, {{ headers: {{ "x-api-key": "{k}" }} }});\n',
    ),
    *_t("code", "python-repr", True, "Settings({snake}=SecretStr('{k}'), timeout=30.0)\n"),
    *_t("code", "python", False, 'TEST_KEYS = [\n    "{k}",\n]\n', "client.login('{k}')\n"),
    *_t("config", "terraform", True, '{snake} = "{k}"\n', 'provider "{vendor}" {{\n  token = "{k}"\n}}\n'),
    *_t(
        "config",
        "docker-compose",
        True,
        "services:\n  api:\n    environment:\n      - {ENV}={k}\n",
        'services:\n  worker:\n    environment:\n      {ENV}: "{k}"\n',
    ),
    *_t(
        "config",
        "github-actions",
        True,
        "jobs:\n  deploy:\n    env:\n      {ENV}: {k}\n    steps:\n      - run: make\n",
    ),
    *_t("config", "helm", True, "secrets:\n  {camel}: {k}\n  region: eu-west-1\n"),
    *_t("config", "properties", True, "{dot}={k}\nserver.port=8080\n", "{dot} = {k}\n"),
    *_t("config", "systemd", True, '[Service]\nEnvironment="{ENV}={k}"\nExecStart=/usr/bin/app\n'),
    *_t("config", "k8s-secret", True, "kind: Secret\nstringData:\n  {ENV}: {k}\n"),
    *_t("config", "csv", False, "name,provider,value,created\nprod,{vendor},{k},2026-11-02\n"),
    *_t(
        "json",
        "jupyter",
        True,
        '{{"cell_type": "code", "source": ["import os\\n", "os.environ[\\"{ENV}\\"] = \\"{k}\\"\\n"]}}',
    ),
    *_t("json", "vscode", True, '{{"mcp": {{"servers": {{"tools": {{"env": {{"{ENV}": "{k}"}}}}}}}}}}'),
    *_t("json", "postman-env", True, '{{"values": [{{"key": "{snake}", "value": "{k}", "enabled": true}}]}}'),
    *_t(
        "json",
        "secrets-manager",
        True,
        '{{"Name": "prod/app", "SecretString": "{{\\"{snake}\\":\\"{k}\\"}}"}}',
    ),
    *_t("json", "json", False, '{{"provider": "{vendor}", "values": ["{k}"]}}'),
    *_t(
        "url",
        "query",
        True,
        "https://api.{vendor}.test/v1/models?{snake}={k}&limit=5",
        "wss://stream.{vendor}.test/v1/realtime?api-key={k}",
    ),
    *_t("url", "url-encoded", True, "https://app.test/oauth/cb?state=xyz&access_token={ke}&expires_in=3600"),
    *_t(
        "url",
        "git-remote",
        True,
        "https://oauth2:{k}@gitlab.acme.test/platform/api.git",
        "https://x-access-token:{k}@github.com/acme/api.git",
    ),
    *_t("url", "path", False, "https://hooks.acme.test/ingest/{k}/events"),
    *_t(
        "log",
        "nginx",
        True,
        '10.0.4.17 - - [03/Dec/2026:10:00:01 +0000] "GET /v1/models?key={k} HTTP/1.1" 401 53 '
        '"-" "python-httpx/0.27.0"',
    ),
    *_t(
        "log",
        "apache",
        True,
        '192.168.1.20 - - [03/Dec/2026:10:00:02 +0100] "POST /hook?token={k} HTTP/1.1" 200 2',
    ),
    *_t(
        "log",
        "traceback",
        True,
        'Traceback (most recent call last):\n  File "/srv/app/main.py", line 12, in <module>\n'
        '    client = Client(api_key="{k}")\nAuthenticationError: 401',
    ),
    *_t(
        "log",
        "http-dump",
        True,
        "> GET /v1/me HTTP/1.1\n> Host: api.acme.test\n> Authorization: Bearer {k}\n> Accept: */*\n",
        "< HTTP/1.1 401\nx-request-id: 7\n> X-Api-Key: {k}\n",
    ),
    *_t(
        "log",
        "json-log",
        True,
        '{{\n  "level": "error",\n  "msg": "upstream auth failed",\n  "request": {{"headers": '
        '{{"authorization": "Bearer {k}"}}}}\n}}',
        '{{"ts": "{ts}", "msg": "retry\\nconfig: {ENV}={k}\\nattempt=2"}}',
    ),
    *_t("log", "journald", True, "Dec 03 10:00:01 web-1 app[812]: settings loaded: {snake}={k} region=eu"),
    *_t(
        "log",
        "shell-history",
        True,
        "  512  export {ENV}={k}\n  513  make deploy\n",
        '  88  curl -H "Authorization: token {k}" https://api.acme.test/user\n',
    ),
    *_t("log", "python-repr", True, "DEBUG {ts} loaded Settings({snake}=SecretStr('{k}'), retries=3)"),
    *_t("log", "shell-history", False, "  91  docker login -u acme -p {k} registry.acme.test\n"),
    *_t("log", "error", False, "{ts} ERROR upstream rejected {k} (401 Unauthorized)"),
]
#: templates for a password only (where a URL or a DSN carries it)
PASSWORD_URLS = [
    *_t(
        "url",
        "dsn",
        True,
        "postgresql://app:{ke}@db.internal:5432/ledger?sslmode=require",
        "mongodb+srv://admin:{ke}@cluster0.ab1cd.mongodb.net/?retryWrites=true",
        "amqp://svc:{ke}@mq.internal:5672/%2F",
        "redis://:{ke}@cache.internal:6379/0",
    ),
]


def _names(env: str) -> dict[str, str]:
    parts = env.lower().split("_")
    return {"ENV": env, "snake": env.lower(), "camel": parts[0] + "".join(p.title() for p in parts[1:]),
            "dot": ".".join(parts)}  # fmt: skip


def _render(template: Template, kind: str, key: str, rng: random.Random, inner: tuple[int, int] | None,
            shaped: bool) -> Doc:  # fmt: skip
    """``template`` with ``key`` planted (URL-encoded where it says ``{ke}``); ``inner``: the secret's
    place inside ``key`` when the key is a longer value around it."""
    ts = f"2026-12-0{rng.randrange(1, 4)}T{rng.randrange(24):02d}:{rng.randrange(60):02d}:07.{rng.randrange(999):03d}Z"
    mark = "\0"
    text = template.text.format(k=mark, ke=mark, vendor=kind.split("-")[0], ts=ts, **_names(ENV[kind]))
    planted = urllib.parse.quote(key, safe="") if "{ke}" in template.text else key
    start = text.index(mark)
    lo, hi = inner if inner and planted == key else (0, len(planted))
    return Doc(template.context, template.family, text.replace(mark, planted, 1),
               [Planted(kind, start + lo, start + hi, shaped, template.named)])  # fmt: skip


def _applicable(kind: str, context: str) -> list[Template]:
    if kind == "password" and context == "url":
        return PASSWORD_URLS
    found = [t for t in TEMPLATES if t.context == context]
    if kind == "slack-webhook":  # a URL itself: not inside another URL, not behind "Bearer"
        found = [t for t in found if t.context != "url" and "Bearer" not in t.text and "token " not in t.text]
        return found or _t(context, "bare", False, "{k}")
    return found


def generate(seed: int, per_kind: int = 4, n_negatives: int = 500) -> list[Doc]:
    """``per_kind`` documents of every kind in every context, an AWS credentials file and PEM keys per
    round, and ``n_negatives`` documents with no secret."""
    rng = random.Random(seed * 7919 + 17)
    keys = Keys(rng)
    shaped, shapeless = _shaped_makers(keys), _shapeless_makers(keys)
    docs: list[Doc] = []
    for makers, is_shaped in ((shaped, True), (shapeless, False)):
        for kind, make in makers.items():
            for context in CONTEXTS:
                for _ in range(per_kind):
                    template = rng.choice(_applicable(kind, context))
                    key, inner = make(), None
                    if kind == "azure-storage":
                        around = (
                            f"DefaultEndpointsProtocol=https;AccountName=acme{rng.randrange(99)};AccountKey="
                        )
                        inner = (len(around), len(around) + len(key))
                        key = around + key + ";EndpointSuffix=core.windows.net"
                    docs.append(_render(template, kind, key, rng, inner, is_shaped))
    for _ in range(per_kind):
        docs.extend(_aws_files(keys) + _pems(keys))
    return docs + negatives(keys, n_negatives)


def _doc(context: str, family: str, head: str, secret: str, tail: str, kind: str, shaped: bool = True) -> Doc:
    return Doc(
        context,
        family,
        head + secret + tail,
        [Planted(kind, len(head), len(head) + len(secret), shaped, True)],
    )


def _aws_files(k: Keys) -> list[Doc]:
    """``~/.aws/credentials`` and ``aws configure export-credentials`` JSON: an access key id and its secret."""
    out = []
    for context in ("config", "json"):
        key_id, secret = "AKIA" + k.pick(UPPER + "234567", 16), k.pick(UPPER + LOWER + DIGITS + "+/", 40)
        if context == "config":
            doc = _doc(context, "aws-credentials", f"[default]\naws_access_key_id = {key_id}\naws_secret_access_key = ",
                       secret, "\nregion = eu-west-1\n", "aws-secret-access-key", shaped=False)  # fmt: skip
        else:
            doc = _doc(context, "aws-credentials", f'{{"Version": 1, "AccessKeyId": "{key_id}", "SecretAccessKey": "',
                       secret, '"}', "aws-secret-access-key", shaped=False)  # fmt: skip
        at = doc.text.index(key_id)
        doc.planted.insert(0, Planted("aws-access-key-id", at, at + len(key_id), True, True))
        out.append(doc)
    return out


def _pems(k: Keys) -> list[Doc]:
    """Private keys as a Helm value (an indented block), inside JSON (escaped) and in Python source."""
    indented = "\n".join("    " + row for row in k.pem().splitlines())
    cert = '{"tls": {"cert": "-----BEGIN CERTIFICATE-----\\nMIIB\\n-----END CERTIFICATE-----", "key": "'
    return [
        _doc("config", "helm", "tls:\n  privateKey: |\n    ", indented[4:], "\n", "private-key"),
        _doc("json", "json", cert, k.pem().replace("\n", "\\n"), '"}}', "private-key"),
        _doc("code", "python", 'SIGNING_KEY = """\\\n', k.pem(), '\n"""\n', "private-key"),
    ]


def negatives(k: Keys, n: int) -> list[Doc]:
    """Documents with no credential: ids, digests, public keys and certificates, placeholders, hashes."""
    r = k.rng

    def cert(label: str) -> str:
        body = k.b64(600)
        return (
            f"-----BEGIN {label}-----\n"
            + "\n".join(body[i : i + 64] for i in range(0, len(body), 64))
            + (f"\n-----END {label}-----")
        )

    makers: list[tuple[str, Callable[[], str]]] = [
        ("config", lambda: "ca.crt: |\n" + cert("CERTIFICATE")),
        ("config", lambda: cert("PGP PUBLIC KEY BLOCK")),
        ("config", lambda: f"ssh-rsa {k.b64(279)} deploy@ci"),
        ("config", lambda: f"github.com/acme/lib v1.{r.randrange(30)}.0 h1:{k.b64(32)}"),
        ("config", lambda: f"httpx==0.27.{r.randrange(3)} --hash=sha256:{k.hex(64)}"),
        ("json", lambda: f'"resolved": "https://registry.yarnpkg.com/x/-/x-1.0.0.tgz#{k.hex(40)}"'),
        ("config", lambda: f"image: registry.acme.test/api@sha256:{k.hex(64)}"),
        (
            "json",
            lambda: f'{{"metadata": {{"uid": "{k.hex(8)}-{k.hex(4)}-4{k.hex(3)}-a{k.hex(3)}-{k.hex(12)}"}}}}',
        ),
        ("log", lambda: f"job {k.pick(DIGITS + 'ABCDEFGHJKMNPQRSTVWXYZ', 26)} finished"),  # ULID
        ("json", lambda: f'{{"_id": {{"$oid": "{k.hex(24)}"}}}}'),
        (
            "log",
            lambda: f"pinned Qm{k.pick('123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz', 44)}",
        ),
        ("code", lambda: f'<script src="/static/js/main.{k.hex(8)}.chunk.js"></script>'),
        ("log", lambda: f"{k.hex(7)} Merge pull request #{r.randrange(999)} from acme/fix"),
        ("code", lambda: f"index {k.hex(7)}..{k.hex(7)} 100644"),
        ("config", lambda: f"arn:aws:iam::{k.pick(DIGITS, 12)}:role/deploy-{k.pick(LOWER, 6)}"),
        ("json", lambda: f'{{"id": "chatcmpl-{k.alnum(29)}", "object": "chat.completion"}}'),
        ("json", lambda: f'{{"tool_call_id": "call_{k.alnum(24)}", "role": "tool"}}'),
        ("json", lambda: f'{{"id": "msg_01{k.alnum(22)}", "type": "message"}}'),
        ("json", lambda: f'{{"file_id": "file-{k.alnum(22)}"}}'),
        ("json", lambda: f'{{"customer": "cus_{k.alnum(14)}", "payment_intent": "pi_{k.alnum(24)}"}}'),
        ("config", lambda: f"STRIPE_PUBLISHABLE_KEY=pk_live_51{k.alnum(97)}"),
        (
            "config",
            lambda: f"LANGFUSE_PUBLIC_KEY=pk-lf-{k.hex(8)}-{k.hex(4)}-{k.hex(4)}-{k.hex(4)}-{k.hex(12)}",
        ),
        ("log", lambda: f"traceparent: 00-{k.hex(32)}-{k.hex(16)}-01"),
        ("log", lambda: f"trace_id={k.hex(32)} span_id={k.hex(16)} status=OK"),
        ("config", lambda: f"password_hash: $2b$12${k.pick(B64URL.replace('-', '.').replace('_', '/'), 53)}"),
        ("config", lambda: f"hashed_password = '$argon2id$v=19$m=65536,t=3,p=4${k.b64(16)}${k.b64(32)}'"),
        ("json", lambda: '{"password": "********", "user": "app"}'),
        ("config", lambda: "api_key: <redacted>"),
        ("config", lambda: "        GH_TOKEN: ${{ secrets.GH_TOKEN }}"),
        ("code", lambda: "password = getpass.getpass('DB password: ')"),
        ("config", lambda: "OPENAI_API_KEY=\nANTHROPIC_API_KEY="),
        ("code", lambda: "api_key = os.getenv('MISTRAL_API_KEY', '')"),
        (
            "log",
            lambda: (
                f"INFO tokens prompt={r.randrange(9999)} completion={r.randrange(999)} model=gpt-4.1-mini"
            ),
        ),
        ("log", lambda: f"GET /assets/{k.hex(20)}.woff2 200 {r.randrange(99999)}"),
        ("json", lambda: f'{{"etag": "\\"{k.hex(32)}\\"", "size": {r.randrange(10**6)}}}'),
        ("code", lambda: f"color: #{k.hex(6)}; background: #{k.hex(6)};"),
        ("log", lambda: f"session {k.alnum(12)} opened for user {k.pick(LOWER, 6)}"),
        ("json", lambda: f'{{"data": "{k.b64(r.randrange(40, 200))}", "encoding": "base64"}}'),
        ("config", lambda: f"key_id: {k.hex(40)}\nfingerprint: SHA256:{k.b64(32).rstrip('=')}"),
        ("url", lambda: f"https://cdn.acme.test/img/{k.hex(32)}.png?w=640&v={k.hex(8)}"),
        (
            "url",
            lambda: f"https://acme.test/reset?uid={k.pick(DIGITS, 6)}&ts={r.randrange(10**9, 2 * 10**9)}",
        ),
        ("url", lambda: "https://user@git.acme.test/acme/api.git"),
    ]
    docs = []
    for _ in range(n):
        context, make = r.choice(makers)
        docs.append(Doc(context, "negative", make()))
    return docs
