"""A labelled set for the secrets scanner: FAKE keys of today's formats in five contexts, plus negatives.

``generate(seed, per_kind)`` is deterministic for a seed. Every key is random (never a real one) but
has its vendor's published shape: prefix, length, alphabet, and GitHub's CRC32 checksum. Each
``Sample`` is one small document of a context (``code``, ``config``, ``json``, ``url``, ``log``, or
``negative``) with the character spans of the secrets planted in it and their kinds.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import string
import urllib.parse
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

CONTEXTS = ("code", "config", "json", "url", "log")
ALNUM = string.ascii_letters + string.digits
URLSAFE = ALNUM + "_-"
HEX = "0123456789abcdef"
_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


@dataclass(frozen=True)
class Label:
    kind: str
    start: int
    end: int


@dataclass
class Sample:
    context: str
    text: str
    labels: list[Label] = field(default_factory=list)


def _s(rng: random.Random, alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def _b62(number: int) -> str:
    out = ""
    while number:
        number, rest = divmod(number, 62)
        out = _B62[rest] + out
    return out.rjust(6, "0")


def _github(rng: random.Random) -> str:
    if rng.random() < 0.25:
        return f"github_pat_{_s(rng, ALNUM, 22)}_{_s(rng, ALNUM, 59)}"
    body = _s(rng, ALNUM, 30)
    return f"{rng.choice(['ghp', 'gho', 'ghu', 'ghs', 'ghr'])}_{body}{_b62(zlib.crc32(body.encode()))}"


def _openai(rng: random.Random) -> str:
    kind = rng.choice(["proj", "proj", "svcacct", "admin", "legacy"])
    if kind == "legacy":
        return f"sk-{_s(rng, ALNUM, 20)}T3BlbkFJ{_s(rng, ALNUM, 20)}"
    n = rng.choice([58, 74])
    return f"sk-{kind}-{_s(rng, URLSAFE, n)}T3BlbkFJ{_s(rng, URLSAFE, n)}"


def _slack(rng: random.Random) -> str:
    if rng.random() < 0.15:  # app-level token
        return f"xapp-1-A{_s(rng, string.ascii_uppercase + string.digits, 10)}-{_s(rng, string.digits, 13)}-{_s(rng, HEX, 64)}"
    if rng.random() < 0.1:  # configuration access token
        return f"xoxe.xoxp-1-{_s(rng, ALNUM, 163)}"
    if rng.random() < 0.5:
        return f"xoxb-{_s(rng, string.digits, 12)}-{_s(rng, string.digits, 13)}-{_s(rng, ALNUM, 24)}"
    digits = string.digits
    return f"xoxp-{_s(rng, digits, 12)}-{_s(rng, digits, 12)}-{_s(rng, digits, 13)}-{_s(rng, HEX, 32)}"


def _jwt(rng: random.Random) -> str:
    def part(obj: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    header = part({"alg": rng.choice(["HS256", "RS256"]), "typ": "JWT"})
    payload = part({"sub": _s(rng, ALNUM, 10), "iat": rng.randrange(1_600_000_000, 1_800_000_000)})
    return f"{header}.{payload}.{_s(rng, URLSAFE, 43)}"


def _pem(rng: random.Random, label: str = "RSA PRIVATE KEY") -> str:
    body = base64.b64encode(rng.randbytes(rng.choice([600, 900, 1200]))).decode()
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return f"-----BEGIN {label}-----\n" + "\n".join(lines) + f"\n-----END {label}-----"


def _b64(rng: random.Random, n_bytes: int, alphabet: str = "+/") -> str:
    return base64.b64encode(rng.randbytes(n_bytes), altchars=alphabet.encode()).decode()


def _gitlab(rng: random.Random) -> str:
    kind = rng.choice(["glpat", "glpat", "routable", "gldt", "glrt", "glptt", "GR1348941"])
    if kind == "glptt":  # pipeline trigger tokens: 40 hex
        return "glptt-" + _s(rng, HEX, 40)
    if kind == "GR1348941":  # runner registration tokens (deprecated, still in old CI files)
        return kind + _s(rng, URLSAFE, 20)
    if kind == "routable":  # GitLab 17.x: a base64 payload, a dot, two version and seven checksum characters
        return f"glpat-{_s(rng, URLSAFE, rng.randrange(27, 60))}.01{_s(rng, string.ascii_lowercase + string.digits, 7)}"
    return f"{kind}-{_s(rng, URLSAFE, 20)}"


def _grafana(rng: random.Random) -> str:
    kind = rng.choice(["glsa", "glc", "legacy"])
    if kind == "glsa":
        return f"glsa_{_s(rng, ALNUM, 32)}_{_s(rng, HEX, 8)}"
    if kind == "glc":
        payload = json.dumps({"o": str(rng.randrange(10**6)), "n": f"stack-{rng.randrange(10**5)}-hm-read",
                              "k": _s(rng, ALNUM, 24), "m": {"r": "eu"}})  # fmt: skip
        return "glc_" + base64.b64encode(payload.encode()).decode()
    return "eyJrIjoi" + _s(rng, ALNUM, 76) + "=="


def _sentry(rng: random.Random) -> str:
    if rng.random() < 0.3:
        return "sntryu_" + _s(rng, HEX, 64)
    claims = {"iat": rng.randrange(1_700_000_000, 1_800_000_000) + rng.random(), "url": "https://sentry.io",
              "region_url": "https://us.sentry.io", "org": f"acme-{rng.randrange(999)}"}  # fmt: skip
    return "sntrys_" + base64.b64encode(json.dumps(claims).encode()).decode() + "_" + _b64(rng, 32)[:43]


def _google_oauth(rng: random.Random) -> str:
    kind = rng.choice(["client", "access", "refresh"])
    if kind == "client":
        return "GOCSPX-" + _s(rng, URLSAFE, 28)
    if kind == "access":
        return "ya29." + _s(rng, URLSAFE, rng.randrange(150, 220))
    return "1//0" + _s(rng, URLSAFE, 99)


def _password(rng: random.Random) -> str:
    chars = ALNUM + "!#%^*+-_~"
    while True:
        value = _s(rng, chars, rng.randrange(12, 25))
        if sum(map(bool, (set(value) & set(string.ascii_lowercase), set(value) & set(string.ascii_uppercase),
                          set(value) & set(string.digits)))) == 3:  # fmt: skip
            return value


#: kind -> key maker. The keys without a shape of their own (mistral, cohere, password, the AWS
#: secret) only appear bound to a name.
MAKERS: dict[str, Callable[[random.Random], str]] = {
    "openai": _openai,
    "anthropic": lambda r: f"sk-ant-{r.choice(['api03', 'admin01', 'oat01'])}-{_s(r, URLSAFE, 93)}AA",
    "openrouter": lambda r: f"sk-or-v1-{_s(r, HEX, 64)}",
    "huggingface": lambda r: (
        r.choice(["hf_", "hf_", "api_org_"])
        + _s(r, string.ascii_uppercase, 2)
        + _s(r, string.ascii_lowercase, 2)
        + _s(r, string.ascii_letters, 30)
    ),
    "github": _github,
    "pulumi": lambda r: f"pul-{_s(r, HEX, 40)}",
    "aws-access-key-id": lambda r: r.choice(["AKIA", "ASIA"]) + _s(r, string.ascii_uppercase + "234567", 16),
    "slack": _slack,
    "slack-webhook": lambda r: (
        f"https://hooks.slack.com/services/T{_s(r, string.ascii_uppercase + string.digits, 8)}"
        f"/B{_s(r, string.ascii_uppercase + string.digits, 10)}/{_s(r, ALNUM, 24)}"
    ),
    "stripe": lambda r: (
        f"{r.choice(['sk_live', 'rk_live', 'sk_test', 'rk_test'])}_{_s(r, ALNUM, r.choice([24, 99]))}"
        if r.random() < 0.8
        else "whsec_" + _s(r, ALNUM, 32)
    ),
    "google-api-key": lambda r: "AIza" + _s(r, URLSAFE, 35),
    "jwt": _jwt,
    "tavily": lambda r: "tvly-" + r.choice(["", "dev-"]) + _s(r, ALNUM, 32),
    "groq": lambda r: "gsk_" + _s(r, ALNUM, 52),
    "together": lambda r: "tgp_v1_" + _s(r, URLSAFE, 43),
    "replicate": lambda r: "r8_" + _s(r, ALNUM, 37),
    "mistral": lambda r: _s(r, ALNUM, 32),
    "cohere": lambda r: _s(r, ALNUM, 40),
    "deepseek": lambda r: "sk-" + _s(r, HEX, 32),
    "xai": lambda r: "xai-" + _s(r, ALNUM, 80),
    "gitlab": _gitlab,
    "grafana": _grafana,
    "google-oauth": _google_oauth,
    "perplexity": lambda r: "pplx-" + _s(r, ALNUM, 48),
    "fireworks": lambda r: "fw_" + _s(r, string.ascii_uppercase, 2) + _s(r, ALNUM, 22),
    "cerebras": lambda r: "csk-" + _s(r, string.ascii_lowercase + string.digits, 48),
    "langsmith": lambda r: f"lsv2_{r.choice(['pt', 'sk'])}_{_s(r, HEX, 32)}_{_s(r, HEX, 10)}",
    "langfuse": lambda r: f"sk-lf-{uuid.UUID(bytes=r.randbytes(16), version=4)}",
    "sophia": lambda r: "sk-sophia-" + _b64(r, 32, "-_").rstrip("="),
    "npm": lambda r: "npm_" + _s(r, ALNUM, 36),
    "pypi": lambda r: "pypi-AgEIcHlwaS5vcmc" + _b64(r, r.randrange(60, 150), "-_").rstrip("="),
    "docker": lambda r: "dckr_pat_" + _s(r, URLSAFE, 27),
    "digitalocean": lambda r: f"{r.choice(['dop', 'doo'])}_v1_{_s(r, HEX, 64)}",
    "databricks": lambda r: "dapi" + _s(r, HEX, 32) + r.choice(["", "", "-2"]),
    "shopify": lambda r: f"{r.choice(['shpat', 'shpss', 'shpca'])}_{_s(r, HEX, 32)}",
    "twilio": lambda r: r.choice(["SK", "AC"]) + _s(r, HEX, 32),
    "sendgrid": lambda r: f"SG.{_s(r, URLSAFE, 22)}.{_s(r, URLSAFE, 43)}",
    "mailgun": lambda r: "key-" + _s(r, HEX, 32),
    "postman": lambda r: f"PMAK-{_s(r, HEX, 24)}-{_s(r, HEX, 34)}",
    "linear": lambda r: "lin_api_" + _s(r, ALNUM, 40),
    "notion": lambda r: (
        "ntn_" + _s(r, string.digits, 11) + _s(r, ALNUM, 35)
        if r.random() < 0.6
        else ("secret_" + _s(r, ALNUM, 43))
    ),
    "sentry": _sentry,
    "vault": lambda r: "hvs." + _s(r, URLSAFE, r.choice([24, 91])),
    "terraform": lambda r: f"{_s(r, ALNUM, 14)}.atlasv1.{_s(r, URLSAFE, 67)}",
    "supabase": lambda r: "sbp_" + _s(r, HEX, 40),
    "doppler": lambda r: f"dp.{r.choice(['pt', 'st', 'sa'])}.{_s(r, ALNUM, 43)}",
    "atlassian": lambda r: f"ATATT3xFfGF0{_s(r, URLSAFE, 171)}={_s(r, HEX.upper(), 8)}",
    "telegram": lambda r: f"{r.randrange(10**8, 10**10)}:AA{_s(r, URLSAFE, 33)}",
    "age-secret-key": lambda r: "AGE-SECRET-KEY-1" + _s(r, "QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L", 58),
    "elevenlabs": lambda r: "sk_" + _s(r, HEX, 48),
    "pinecone": lambda r: f"pcsk_{_s(r, ALNUM, 5)}_{_s(r, ALNUM, 64)}",
    "jina": lambda r: "jina_" + _s(r, HEX, 32) + _s(r, URLSAFE, 28),
    "resend": lambda r: f"re_{_s(r, ALNUM, 8)}_{_s(r, ALNUM, 24)}",
    "firecrawl": lambda r: "fc-" + _s(r, HEX, 32),
    "e2b": lambda r: "e2b_" + _s(r, HEX, 40),
    "browserbase": lambda r: "bb_live_" + _s(r, URLSAFE, 27),
    "generic-sk": lambda r: f"sk-{r.choice(['helicone', 'portkey', 'lm', 'vk'])}-{_s(r, URLSAFE, 40)}",
    "azure-storage": lambda r: _b64(r, 64),
    "azure-sas": lambda r: urllib.parse.quote(_b64(r, 32), safe=""),
    "azure-servicebus": lambda r: _b64(r, 32),
    "azure": lambda r: _s(r, HEX, 32),
    "password": _password,
    "aws-secret-access-key": lambda r: _s(r, ALNUM + "/+", 40),
}
NAMED_ONLY = frozenset({"mistral", "cohere", "azure", "password", "aws-secret-access-key"})
#: kinds whose secret is one field of a longer value: (the value around it, with {k} where it goes)
WRAPPED = {
    "azure-storage": "DefaultEndpointsProtocol=https;AccountName=acme{n};AccountKey={k};EndpointSuffix=core.windows.net",
    "azure-servicebus": "Endpoint=sb://acme{n}.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;"
    "SharedAccessKey={k}",
    "azure-sas": "https://acme{n}.blob.core.windows.net/exports/day.csv?sv=2022-11-02&ss=b&srt=co&sp=rl"
    "&se=2026-12-31T00:00:00Z&spr=https&sig={k}",
}
ENV_NAMES = {
    "openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY", "openrouter": "OPENROUTER_API_KEY",
    "huggingface": "HF_TOKEN", "github": "GITHUB_TOKEN", "pulumi": "PULUMI_ACCESS_TOKEN",
    "aws-access-key-id": "AWS_ACCESS_KEY_ID", "slack": "SLACK_BOT_TOKEN", "slack-webhook": "SLACK_WEBHOOK",
    "stripe": "STRIPE_SECRET_KEY", "google-api-key": "GOOGLE_API_KEY", "jwt": "SESSION_TOKEN",
    "tavily": "TAVILY_API_KEY", "groq": "GROQ_API_KEY", "together": "TOGETHER_API_KEY",
    "replicate": "REPLICATE_API_TOKEN", "mistral": "MISTRAL_API_KEY", "cohere": "COHERE_API_KEY",
    "deepseek": "DEEPSEEK_API_KEY", "xai": "XAI_API_KEY", "gitlab": "GITLAB_TOKEN", "azure": "AZURE_OPENAI_API_KEY",
    "password": "DB_PASSWORD", "aws-secret-access-key": "AWS_SECRET_ACCESS_KEY", "grafana": "GRAFANA_TOKEN",
    "google-oauth": "GOOGLE_CLIENT_SECRET", "perplexity": "PERPLEXITY_API_KEY", "fireworks": "FIREWORKS_API_KEY",
    "cerebras": "CEREBRAS_API_KEY", "langsmith": "LANGSMITH_API_KEY", "langfuse": "LANGFUSE_SECRET_KEY",
    "sophia": "SOPHIA_API_KEY", "npm": "NPM_TOKEN", "pypi": "PYPI_TOKEN", "docker": "DOCKERHUB_TOKEN",
    "digitalocean": "DIGITALOCEAN_TOKEN", "databricks": "DATABRICKS_TOKEN", "shopify": "SHOPIFY_ACCESS_TOKEN",
    "twilio": "TWILIO_API_KEY", "sendgrid": "SENDGRID_API_KEY", "mailgun": "MAILGUN_API_KEY",
    "postman": "POSTMAN_API_KEY", "linear": "LINEAR_API_KEY", "notion": "NOTION_TOKEN", "sentry": "SENTRY_AUTH_TOKEN",
    "vault": "VAULT_TOKEN", "terraform": "TF_TOKEN_app_terraform_io", "supabase": "SUPABASE_ACCESS_TOKEN",
    "doppler": "DOPPLER_TOKEN", "atlassian": "JIRA_API_TOKEN", "telegram": "TELEGRAM_BOT_TOKEN",
    "age-secret-key": "SOPS_AGE_KEY", "azure-storage": "AZURE_STORAGE_CONNECTION_STRING",
    "azure-sas": "EXPORT_URL", "azure-servicebus": "SERVICEBUS_CONNECTION_STRING", "elevenlabs": "ELEVENLABS_API_KEY", "pinecone": "PINECONE_API_KEY",
    "jina": "JINA_API_KEY", "resend": "RESEND_API_KEY", "firecrawl": "FIRECRAWL_API_KEY", "e2b": "E2B_API_KEY",
    "browserbase": "BROWSERBASE_API_KEY", "generic-sk": "GATEWAY_API_KEY",
}  # fmt: skip
_HOSTS = ["api.example.com", "gateway.internal", "llm.acme.test", "10.0.3.7:8443"]
_WORDS = [
    "alpha",
    "bravo",
    "model",
    "request",
    "latency",
    "region",
    "retry",
    "upstream",
    "cache",
    "shard",
    "index",
    "tenant",
]


def _fill(template: str, key: str, inner: tuple[int, int] | None = None) -> tuple[str, int, int]:
    """``template`` with ``key`` in it, and the span of the secret (``inner``: its place inside ``key``)."""
    start = template.index("{k}")
    lo, hi = inner or (0, len(key))
    return template.replace("{k}", key, 1), start + lo, start + hi


def _templates(kind: str, rng: random.Random, context: str) -> list[str]:
    env = ENV_NAMES[kind]
    low = env.lower()
    host = rng.choice(_HOSTS)
    if context == "code":
        out = [f'{env} = "{{k}}"', "client = Client(api_key='{k}', timeout=30)",
               f'settings = {{"{low}": "{{k}}", "retries": 3}}', f'os.environ["{env}"] = "{{k}}"',
               '    headers = {"Authorization": "Bearer {k}"}',
               f'const client = new Client({{ apiKey: "{{k}}", baseURL: "https://{host}" }});',
               f'curl -s https://{host}/v1/chat -H "Authorization: Bearer {{k}}" -d @req.json']  # fmt: skip
        if kind == "password":
            out[1] = "conn = connect(host='db', user='app', password='{k}')"
            out[4] = 'db = {"user": "app", "password": "{k}"}'
        if kind == "aws-secret-access-key":
            out[1] = "s3 = boto3.client('s3', aws_secret_access_key='{k}')"
            out[4] = 'creds = {"SecretAccessKey": "{k}"}'
        return out
    if context == "config":
        return [f"{env}={{k}}", f'{env}="{{k}}"', f"export {env}='{{k}}'",
                f"providers:\n  {kind}:\n    {low}: {{k}}\n    timeout: 30",
                f'[providers.{kind}]\n{low} = "{{k}}"\nretries = 2',
                f"env:\n  - name: {env}\n    value: \"{{k}}\"\n  - name: LOG_LEVEL\n    value: info",
                f'<appSettings>\n  <add key="{env}" value="{{k}}" />\n</appSettings>']  # fmt: skip
    if context == "json":
        return [f'{{"{low}": "{{k}}"}}', f'{{"provider": "{kind}", "credentials": {{"{low}": "{{k}}", "region": "eu"}}}}',
                f'[{{"name": "{kind}", "{low}": "{{k}}"}}]', f'{{\n  "env": {{\n    "{env}": "{{k}}"\n  }}\n}}']  # fmt: skip
    if context == "url":
        if kind == "password":
            return ["postgres://app:{k}@db.internal:5432/ledger", "redis://default:{k}@" + host + "/0",
                    f"https://admin:{{k}}@{host}/v1/status"]  # fmt: skip
        if kind == "aws-secret-access-key":
            return [f"https://{host}/presign?aws_secret_access_key={{k}}&region=eu-west-1"]
        return [f"https://{host}/v1/models?api_key={{k}}", f"https://{host}/hook?token={{k}}&page=2",
                f"wss://{host}/stream?{low}={{k}}", f"https://user:{{k}}@{host}/v1/chat"]  # fmt: skip
    # log
    ts = f"2026-{rng.randrange(1, 13):02d}-{rng.randrange(1, 28):02d}T10:{rng.randrange(60):02d}:01Z"
    if kind == "password":
        return [f"{ts} ERROR db connect failed password={{k}} host=db", f"{ts} DEBUG config: {{'password': '{{k}}'}}",
                f"{ts} WARN login retry user=app passwd={{k}}"]  # fmt: skip
    if kind == "aws-secret-access-key":
        return [
            f"{ts} DEBUG boto creds aws_secret_access_key={{k}}",
            f"{ts} INFO loaded SecretAccessKey: {{k}}",
        ]
    return [f"{ts} DEBUG request headers: Authorization: Bearer {{k}}",
            f"{ts} ERROR calling {kind} with key={{k}}: 401 Unauthorized",
            f"{ts} WARN upstream {host} rejected api_key={{k}} (attempt 2)",
            f'{ts} INFO {{"level": "debug", "x-api-key": "{{k}}", "status": 200}}',
            f"{ts} ERROR {kind}: request failed: invalid api key {{k}} (401)",
            f'level=error ts={ts} msg="auth failed" {low}={{k}} retry=false']  # fmt: skip


def _shaped_only(kind: str, rng: random.Random, context: str) -> list[str]:
    """Contexts where a shaped key appears with no telling name at all."""
    if kind in NAMED_ONLY:
        return []
    if context == "log":
        return ["{ts} WARN retrying with {k} after 429".replace("{ts}", "2026-05-01 12:00:00,113"),
                "Traceback: InvalidKey('{k}')"]  # fmt: skip
    if context == "code":
        return ["KEYS = ['{k}']", "assert check('{k}')"]
    return []


def _positive(kind: str, rng: random.Random, context: str) -> Sample:
    key = MAKERS[kind](rng)
    if kind == "password" and context == "url":  # as a URL carries it
        key = urllib.parse.quote(key, safe="")
    templates = _templates(kind, rng, context) + _shaped_only(kind, rng, context)
    if kind == "slack-webhook":
        templates = [t for t in templates if "Bearer" not in t and "user:{k}@" not in t and "?" not in t] or [
            "{k}"
        ]
    if kind == "azure":  # hex: a key only where a secret name is bound to it (Azure's header is api-key)
        templates = [t for t in templates if "Bearer" not in t and " key={k}" not in t] + [
            "{ts} DEBUG headers={'api-key': '{k}'}".replace("{ts}", "2026-05-01 12:00:00")
        ]
    if kind == "aws-access-key-id" and context == "url":
        templates = [t for t in templates if "user:{k}@" not in t]
    inner = None
    if kind in WRAPPED:  # the secret is one field of a connection string or a signed URL
        around = WRAPPED[kind].replace("{n}", str(rng.randrange(100)))
        inner = (around.index("{k}"), around.index("{k}") + len(key))
        key = around.replace("{k}", key)
        templates = [t for t in templates if "Bearer" not in t and "user:{k}@" not in t and "?" not in t] or [
            "{k}"
        ]
    text, start, end = _fill(rng.choice(templates), key, inner)
    labels = [Label(kind, start, end)]
    if kind == "aws-access-key-id" and context in ("code", "config", "log"):
        secret = MAKERS["aws-secret-access-key"](rng)
        extra = {"code": f'\nAWS_SECRET = "{secret}"', "config": f"\naws_secret_access_key = {secret}",
                 "log": f" secret={secret}"}[context]  # fmt: skip
        at = len(text) + extra.index(secret)
        text += extra
        labels.append(Label("aws-secret-access-key", at, at + len(secret)))
    noise = f"# {rng.choice(_WORDS)} {rng.choice(_WORDS)} v{rng.randrange(10)}\n"
    return Sample(
        context, noise + text, [Label(lb.kind, lb.start + len(noise), lb.end + len(noise)) for lb in labels]
    )


def _special(rng: random.Random) -> list[Sample]:
    """Private keys (PEM, a GCP service-account file) and URLs with passwords."""
    out = []
    for label in ("RSA PRIVATE KEY", "PRIVATE KEY", "EC PRIVATE KEY", "OPENSSH PRIVATE KEY"):
        pem = _pem(rng, label)
        context = rng.choice(["config", "code", "log"])
        prefix = {"config": "tls:\n  key: |\n", "code": 'KEY = """', "log": "DEBUG loaded key\n"}[context]
        if context == "config":
            pem_text = "\n".join("    " + line for line in pem.splitlines())
            out.append(
                Sample(
                    context,
                    prefix + pem_text,
                    [Label("private-key", len(prefix) + 4, len(prefix) + len(pem_text))],
                )
            )
        else:
            out.append(
                Sample(
                    context, prefix + pem + '"""', [Label("private-key", len(prefix), len(prefix) + len(pem))]
                )
            )
    pem = _pem(rng, "PRIVATE KEY").replace("\n", "\\n") + "\\n"
    doc = ('{\n  "type": "service_account",\n  "project_id": "acme-prod",\n  "private_key_id": "'
           + _s(rng, HEX, 40) + '",\n  "private_key": "')  # fmt: skip
    text = doc + pem + '",\n  "client_email": "bot@acme-prod.iam.gserviceaccount.com"\n}'
    out.append(Sample("json", text, [Label("gcp-service-account", len(doc), len(doc) + len(pem))]))
    return out


def negatives(rng: random.Random, n: int) -> list[Sample]:
    """Documents with no secret: digests, UUIDs, base64 blobs, git SHAs, identifiers and placeholders."""
    makers: list[Callable[[], str]] = [
        lambda: f"sha256={hashlib.sha256(rng.randbytes(16)).hexdigest()}",
        lambda: f'"etag": "{hashlib.md5(rng.randbytes(16)).hexdigest()}"',
        lambda: f"commit {hashlib.sha1(rng.randbytes(16)).hexdigest()}\nAuthor: A Dev <dev@example.com>",
        lambda: f"image: ghcr.io/acme/api@sha256:{hashlib.sha256(rng.randbytes(8)).hexdigest()}",
        lambda: (
            f'"integrity": "sha512-{base64.b64encode(hashlib.sha512(rng.randbytes(8)).digest()).decode()}"'
        ),
        lambda: f"request_id={uuid.UUID(bytes=rng.randbytes(16), version=4)} status=200",
        lambda: f'{{"id": "{uuid.UUID(bytes=rng.randbytes(16), version=4)}", "object": "chat.completion"}}',
        lambda: (
            f'"thumbnail": "data:image/png;base64,{base64.b64encode(rng.randbytes(rng.randrange(60, 300))).decode()}"'
        ),
        lambda: f"payload: {base64.b64encode(rng.randbytes(rng.randrange(30, 120))).decode()}",
        lambda: (
            f"{rng.choice(_WORDS)}_{rng.choice(_WORDS)} = {rng.choice(_WORDS)}.{rng.choice(_WORDS)}({rng.randrange(99)})"
        ),
        lambda: 'api_key = os.environ["OPENAI_API_KEY"]',
        lambda: "OPENAI_API_KEY=sk-...your-key-here",
        lambda: "password: ${DB_PASSWORD}",
        lambda: f'token_hash = "{hashlib.sha256(rng.randbytes(16)).hexdigest()}"',
        lambda: (
            f"Merge: {hashlib.sha1(rng.randbytes(4)).hexdigest()[:7]} {hashlib.sha1(rng.randbytes(4)).hexdigest()[:7]}"
        ),
        lambda: f"{rng.choice(_WORDS)} {rng.choice(_WORDS)} {rng.choice(_WORDS)} tokens=1234 max_tokens=4096",
        lambda: f"key: user:{rng.randrange(10**6)}:profile",
        lambda: f"checksum: {hashlib.sha1(rng.randbytes(16)).hexdigest()}",
        lambda: "password_file: /run/secrets/db_password",
        lambda: f"cache key={hashlib.sha256(rng.randbytes(16)).hexdigest()} hit=true",
        lambda: f"cache_key = '{rng.choice(_WORDS)}-{rng.randrange(10**4)}-{rng.choice(_WORDS)}'",
        lambda: f'"session_id": "{rng.randbytes(16).hex()}"',
        lambda: f"idempotency_key: {''.join(rng.choice(ALNUM) for _ in range(32))}",
        lambda: f"public_key: ssh-ed25519 {base64.b64encode(rng.randbytes(51)).decode()} dev@laptop",
        lambda: "Authorization: Bearer <token>",
        lambda: (
            f"build {hashlib.sha1(rng.randbytes(8)).hexdigest()} took {rng.randrange(90)}s; key: {rng.choice(_WORDS)}"
        ),
        lambda: f"SHA256 ({rng.choice(_WORDS)}.tar.gz) = {hashlib.sha256(rng.randbytes(8)).hexdigest()}",
        lambda: f"{uuid.UUID(bytes=rng.randbytes(16), version=4)}  {rng.choice(_WORDS)}",
        # public by design, or shaped like a key but an identifier
        lambda: f"STRIPE_PUBLISHABLE_KEY=pk_live_51{_s(rng, ALNUM, 97)}",
        lambda: f'publishableKey: "pk_test_{_s(rng, ALNUM, 24)}"',
        lambda: f"LANGFUSE_PUBLIC_KEY=pk-lf-{uuid.UUID(bytes=rng.randbytes(16), version=4)}",
        lambda: "    def load(self, key: PKCS12PrivateKeyTypes | None) -> None:",
        lambda: 'verify_token="eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9..."',
        lambda: "- (id)hf_requiredCharacteristicTypesForDisplay;",
        lambda: f"sk-learn-gaussian-process-regression-notebook-{rng.choice(_WORDS)}",
        lambda: f"kv store key-value pairs: {rng.randrange(9999)} keys, secret_rotation_interval_days=30",
    ]
    return [Sample("negative", rng.choice(makers)()) for _ in range(n)]


def generate(seed: int, per_kind: int = 8, n_negatives: int = 400) -> list[Sample]:
    """``per_kind`` samples of every kind in every context, the special cases, and the negatives."""
    rng = random.Random(seed)
    samples = [
        _positive(kind, rng, context) for kind in MAKERS for context in CONTEXTS for _ in range(per_kind)
    ]
    for _ in range(max(1, per_kind // 2)):
        samples.extend(_special(rng))
    return samples + negatives(rng, n_negatives)
