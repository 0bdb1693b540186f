"""Credentials in files, log lines and span attributes: today's key formats, found by their published shapes.

One rule table serves two callers: ``scan_text`` (the ``sophia secrets scan`` command, ``make test``)
reports each credential as a ``Finding`` (kind, line, column, a masked preview; never the secret
itself), and ``credential_spans`` gives the redactor the exact character spans to mask. Two families
of rules, tried in this order, the first to claim a span wins:

- **shaped rules** (``SHAPED``), one per vendor format: a fixed prefix, a length and an alphabet (and
  GitHub's CRC32 checksum, reported as ``verified``). These fire wherever the key appears: code,
  config, JSON, URLs, free log text;
- **named rules**, for values with no shape of their own (passwords, Mistral and Cohere keys, AWS
  secret keys, bearer tokens): a value is reported only when a secret-like name is bound to it
  (``password=``, ``"api_key":``, ``Authorization: Bearer``, ``user:pass@`` in a URL) *and* it
  looks random. Hex digests of hash length, UUIDs, dotted identifiers, placeholders and ``${VAR}``
  references are never reported, and hashes, UUIDs, base64 blobs and git SHAs with no secret
  name bound to them are never even considered: precision first for the rules that guess.

Speed matters because the redactor runs this on every log line: each shaped rule carries literal
needles and runs only when one is in the text (its regex then starts with a literal, which ``re``
finds with a fast substring search, and the left boundary is checked in code rather than by a
leading look-behind, which would defeat that search); the named rules start from the few places a
secret-like word occurs in the lower-cased text instead of trying every position.

A line that carries ``pragma: allowlist secret`` is not reported by ``scan_text`` (redaction ignores
it). ``scan_paths`` walks files and folders, skipping VCS folders, virtual environments, caches,
binaries and files over ``MAX_BYTES``.
"""

from __future__ import annotations

import math
import re
import zlib
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path

MAX_BYTES = 1_000_000
SKIP_DIRS = frozenset({
    ".git", ".hg", ".svn", ".venv", "venv", ".tox", ".nox", "node_modules", "__pycache__", ".mypy_cache",
    ".ruff_cache", ".pytest_cache", ".import_linter_cache", ".cache", "site-packages", ".eggs", "dist", "build",
    ".work",
})  # fmt: skip
#: a line carrying this comment is not reported (detect-secrets' spelling, so one comment serves both)
ALLOW = "pragma: allowlist secret"
_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_ALNUM = frozenset(_B62)
_TOKEN = _ALNUM | {"_", "-"}  # a token starts and ends where this alphabet does


@dataclass(frozen=True, slots=True)
class Finding:
    kind: str
    line: int  # 1-based
    column: int  # 1-based, in characters
    preview: str  # the first few characters and the length: never the whole secret
    offset: int  # 0-based character offset of the secret in the scanned text
    length: int
    verified: bool = False  # a checksum in the format itself holds (GitHub tokens)
    path: str | None = None


def github_checksum(body: str) -> str:
    """The six base62 characters GitHub appends to a token's 30-character body (CRC32)."""
    number, digits = zlib.crc32(body.encode()), ""
    while number:
        number, rest = divmod(number, 62)
        digits = _B62[rest] + digits
    return digits.rjust(6, "0")


def _github_valid(token: str) -> bool:
    body = token.split("_", 1)[1]
    return len(body) == 36 and github_checksum(body[:30]) == body[30:]


def _mixed(value: str) -> bool:
    return any(c.isupper() for c in value) and any(c.islower() for c in value)


def _mixed_digit(value: str) -> bool:
    return _mixed(value) and any(c.isdigit() for c in value)


def _random_tail(value: str) -> bool:
    """Mixed case, or letters and digits: not an identifier such as ``hf_servingcellpriorityparameters``."""
    tail = value[value.index("_" if "_" in value[:5] else "-") + 1 :]
    letters_digits = any(c.isdigit() for c in tail) and not tail.isdigit()
    return (_mixed(tail) or letters_digits) and not _camel_case(tail)


@dataclass(frozen=True, slots=True)
class _Rule:
    kind: str
    needles: tuple[str, ...]  # the rule runs only when one of these is in the text
    pattern: re.Pattern[str]
    group: int = 0
    check: Callable[[str], bool] | None = None  # the value must pass it to be reported
    verify: Callable[[str], bool] | None = None  # marks a finding ``verified``
    left: frozenset[str] = _TOKEN  # a match preceded by one of these is the tail of a longer token


_R = r"(?![A-Za-z0-9_\-])"  # the token ends here
_R64 = r"(?![A-Za-z0-9_\-+/=])"  # … for tokens in the base64 alphabet


def _rule(kind: str, needles: str | tuple[str, ...], pattern: str, *, group: int = 0,
          check: Callable[[str], bool] | None = None, verify: Callable[[str], bool] | None = None,
          left: frozenset[str] = _TOKEN) -> _Rule:  # fmt: skip
    return _Rule(kind, (needles,) if isinstance(needles, str) else needles, re.compile(pattern), group, check,
                 verify, left)  # fmt: skip


_NONE: frozenset[str] = frozenset()
#: vendor formats, most specific first (``sk-ant-`` before ``sk-``). Prefixes, lengths and alphabets as
#: the vendors publish them, with some slack in the length where a vendor has changed it before.
SHAPED: tuple[_Rule, ...] = (
    _rule("gcp-service-account", '"private_key"',
          r"\"private_key\"\s*:\s*\"(-----BEGIN (?:RSA )?PRIVATE KEY-----(?:\\n|\\r|[A-Za-z0-9+/=])+?"
          r"-----END (?:RSA )?PRIVATE KEY-----(?:\\n)?)\"", group=1, left=_NONE),
    _rule("private-key", "PRIVATE KEY",
          r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----(?:\\[nr]|\s|[A-Za-z0-9+/=:,\-])*?"
          r"[A-Za-z0-9+/]{32}[\s\S]*?(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|\Z)", left=_NONE),
    _rule("age-secret-key", "AGE-SECRET-KEY-1", r"AGE-SECRET-KEY-1[02-9AC-HJ-NP-Z]{58}" + _R),
    _rule("sophia", "sk-", r"sk-sophia-[A-Za-z0-9_\-]{40,64}" + _R),
    _rule("anthropic", "sk-", r"sk-ant-(?:api|admin|oat|ort)\d\d-[A-Za-z0-9_\-]{40,200}" + _R),
    _rule("openrouter", "sk-", r"sk-or-v1-[A-Za-z0-9]{48,80}" + _R),
    _rule("langfuse", "sk-", r"sk-lf-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}" + _R),
    _rule("openai", "sk-",
          r"sk-(?:proj|svcacct|admin|None)-[A-Za-z0-9_\-]{40,250}" + _R),
    _rule("openai", "T3BlbkFJ", r"sk-[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20}" + _R),
    _rule("openai", "sk-", r"sk-[A-Za-z0-9]{48}" + _R, check=_mixed),
    _rule("deepseek", "sk-", r"sk-[0-9a-f]{32}" + _R),
    # other vendors' ``sk-<name>-<random>`` keys (Helicone, Portkey, …): the same habit, a random tail
    _rule("generic-sk", "sk-", r"sk-[a-z0-9]{2,12}-[A-Za-z0-9_\-]{32,250}" + _R,
          check=lambda v: _mixed_digit(v.split("-", 2)[2])),
    _rule("elevenlabs", "sk_", r"sk_[0-9a-f]{48}" + _R),
    _rule("github", "gh", r"gh[pousr]_[A-Za-z0-9]{36}" + _R,
          verify=_github_valid),
    _rule("github", "github_pat_", r"github_pat_[A-Za-z0-9_]{70,100}" + _R),
    _rule("gitlab", "gl", r"gl(?:pat|dt|rt|ft|soat|ffct|imt|agent|oas|cbt)-[A-Za-z0-9_\-]{20,300}"
          r"(?:\.[0-9a-z]{9})?" + _R),
    _rule("gitlab", "gl", r"glptt-[0-9a-f]{40}" + _R),
    _rule("gitlab", "GR1348941", r"GR1348941[A-Za-z0-9_\-]{20}" + _R),
    _rule("grafana", "gl", r"glsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8}" + _R),
    _rule("grafana", "gl", r"glc_[A-Za-z0-9+/]{32,400}={0,3}" + _R64, check=_mixed_digit),
    _rule("grafana", "eyJ", r"eyJrIjoi[A-Za-z0-9]{70,400}={0,3}" + _R64),
    _rule("huggingface", "hf_", r"hf_[A-Za-z0-9]{34,40}" + _R, check=_random_tail),
    _rule("huggingface", "api_org_", r"api_org_[A-Za-z]{34}" + _R, check=_mixed),
    _rule("pulumi", "pul-", r"pul-[0-9a-f]{40}" + _R),
    _rule("aws-access-key-id", ("AKIA", "ASIA", "ABIA", "ACCA"), r"(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}(?![A-Za-z0-9])",
          left=_ALNUM),
    _rule("slack-webhook", "hooks.slack.com",
          r"https://hooks\.slack\.com/(?:services|workflows|triggers)/T[A-Z0-9]{6,12}/[A-Za-z0-9/]{20,80}", left=_NONE),
    _rule("slack", "xox", r"xoxe\.xox[bp]-\d-[A-Za-z0-9]{100,200}" + _R),
    _rule("slack", "xox", r"xox[abeposr]-\d+-[A-Za-z0-9\-]{16,250}" + _R),
    _rule("slack", "xapp-", r"xapp-\d-[A-Z0-9]{6,14}-\d{6,16}-[a-f0-9]{32,80}" + _R),
    _rule("stripe", ("k_live_", "k_test_"), r"[sr]k_(?:live|test)_[A-Za-z0-9]{20,247}" + _R),
    _rule("stripe", "whsec_", r"whsec_[A-Za-z0-9+/]{32,64}" + _R),
    _rule("google-api-key", "AIza", r"AIza[0-9A-Za-z_\-]{35}" + _R),
    _rule("google-oauth", "GOCSPX-", r"GOCSPX-[A-Za-z0-9_\-]{24,40}" + _R),
    _rule("google-oauth", "ya29.", r"ya29\.[A-Za-z0-9_\-]{30,2048}" + _R),
    _rule("google-oauth", "1//0", r"1//0[A-Za-z0-9_\-]{40,512}" + _R),
    _rule("jwt", "eyJ", r"eyJ[A-Za-z0-9_\-]{10,}\.eyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{16,}" + _R),
    _rule("tavily", "tvly-", r"tvly-(?:dev-|prod-)?[A-Za-z0-9]{20,64}" + _R),
    _rule("groq", "gsk_", r"gsk_[A-Za-z0-9]{40,64}" + _R),
    _rule("together", "tgp_v1_", r"tgp_v1_[A-Za-z0-9_\-]{40,48}" + _R),
    _rule("replicate", "r8_", r"r8_[A-Za-z0-9]{30,48}" + _R),
    _rule("xai", "xai-", r"xai-[A-Za-z0-9]{48,100}" + _R),
    _rule("perplexity", "pplx-", r"pplx-[A-Za-z0-9]{40,56}" + _R),
    _rule("fireworks", "fw_", r"fw_[A-Za-z0-9]{20,30}" + _R, check=_mixed),
    _rule("cerebras", "csk-", r"csk-[A-Za-z0-9]{40,56}" + _R),
    _rule("langsmith", "lsv2_", r"lsv2_(?:pt|sk)_[0-9a-f]{32}_[0-9a-f]{10}" + _R),
    _rule("npm", "npm_", r"npm_[A-Za-z0-9]{36}" + _R),
    _rule("pypi", "pypi-AgE", r"pypi-AgE[A-Za-z0-9_\-]{50,}" + _R),
    _rule("docker", "dckr_", r"dckr_(?:pat|oat)_[A-Za-z0-9_\-]{20,40}" + _R),
    _rule("digitalocean", "_v1_", r"do[opr]_v1_[0-9a-f]{64}" + _R),
    _rule("databricks", "dapi", r"dapi[0-9a-f]{32}(?:-\d)?" + _R),
    _rule("shopify", "shp", r"shp(?:at|ss|ca|pa)_[0-9a-fA-F]{32}" + _R),
    _rule("twilio", ("SK", "AC"), r"(?:SK|AC)[0-9a-f]{32}" + _R),
    _rule("sendgrid", "SG.", r"SG\.[A-Za-z0-9_\-]{16,32}\.[A-Za-z0-9_\-]{16,64}" + _R),
    _rule("mailgun", "key-", r"key-[0-9a-f]{32}" + _R, check=lambda v: sum(c.isdigit() for c in v) >= 4),
    _rule("postman", "PMAK-", r"PMAK-[0-9a-f]{24}-[0-9a-f]{34}" + _R),
    _rule("linear", "lin_", r"lin_(?:api_[A-Za-z0-9]{32,48}|oauth_[0-9a-f]{64})" + _R),
    _rule("notion", "ntn_", r"ntn_[A-Za-z0-9]{40,56}" + _R, check=_random_tail),
    _rule("notion", "secret_", r"secret_[A-Za-z0-9]{43}" + _R, check=_mixed_digit),
    _rule("sentry", "sntry", r"sntrys_eyJ[A-Za-z0-9+/]{30,600}={0,2}_[A-Za-z0-9+/]{43}" + _R64),
    _rule("sentry", "sntry", r"sntryu_[0-9a-f]{64}" + _R),
    _rule("azure-storage", "AccountKey=", r"AccountKey=([A-Za-z0-9+/]{86}==)", group=1, left=_NONE),
    _rule("azure-servicebus", "SharedAccessKey=", r"SharedAccessKey=([A-Za-z0-9+/]{43}=)", group=1, left=_NONE),
    _rule("azure-sas", "sig=", r"[?&;]sig=([A-Za-z0-9%+/=]{43,130})(?![A-Za-z0-9%+/=])", group=1, left=_NONE),
    _rule("vault", "hv", r"hv[sb]\.[A-Za-z0-9_\-]{24,200}" + _R),
    _rule("terraform", "atlasv1", r"[A-Za-z0-9]{14}\.atlasv1\.[A-Za-z0-9_\-]{60,70}" + _R),
    _rule("supabase", "sb", r"(?:sbp_[0-9a-f]{40}|sb_secret_[A-Za-z0-9_\-]{20,64})" + _R),
    _rule("doppler", "dp.", r"dp\.(?:pt|st|sa|ct|scim|audit)\.[A-Za-z0-9]{40,44}" + _R),
    _rule("atlassian", "ATATT3", r"ATATT3[A-Za-z0-9_\-=]{150,300}" + _R),
    _rule("pinecone", "pcsk_", r"pcsk_[A-Za-z0-9_]{40,100}" + _R),
    _rule("jina", "jina_", r"jina_[A-Za-z0-9_\-]{40,80}" + _R, check=_random_tail),
    _rule("resend", "re_", r"re_[A-Za-z0-9]{8}_[A-Za-z0-9]{24}" + _R),
    _rule("firecrawl", "fc-", r"fc-[0-9a-f]{32}" + _R),
    _rule("e2b", "e2b_", r"e2b_[0-9a-f]{40}" + _R),
    _rule("browserbase", "bb_", r"bb_(?:live|test)_[A-Za-z0-9_\-]{20,40}" + _R),
    _rule("telegram", ":AA", r"(?<![0-9])\d{8,10}:AA[A-Za-z0-9_\-]{33}" + _R, left=_NONE),
)  # fmt: skip

# Names that bind a secret; "strong" ones (password, secret, token …) and the bare "key", which
# needs a more random value. Every one holds one of ``_NAME_WORDS``: the search starts from those.
_NAME_WORDS = ("key", "secret", "pass", "pwd", "token", "credential")
_NAME = (r"(?P<name>[a-z0-9_.\-]{0,60}?(?:api[_\-.]?key|apikey|secret|passw(?:or)?d|passphrase|(?<![a-z0-9])pwd|"
         r"pass(?![a-z])|token|access[_\-]?key|auth[_\-]?key|credential|private[_\-]?key|(?<![a-z0-9])key)"
         r"[a-z0-9_\-]{0,40})")  # bounded: no quadratic walk over a long identifier  # fmt: skip
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_.-")
_WORD_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")
#: a name with one of these binds a secret for sure; one with only "key" in it may be a cache key
_STRONG = re.compile(r"(?i)api[ _\-.]?key|apikey|secret|passw|passphrase|pwd|pass(?![a-z])|token|access[_\-]?key|"
                     r"auth|credential|private")  # fmt: skip
_TOKEN_ALPHABET = re.compile(r"[A-Za-z0-9_\-+/=.~]+")
_VALUE = r"(?P<value>[^\s\"'`,;&<>()\[\]{}\\|]{8,400})"
# The patterns below run on the lower-cased text (the same offsets), so they need no (?i).
_NAMED = re.compile(_NAME + r"\\?[\"'`]?\]?[ \t]*(?::=|=>|=(?!=)|:)[ \t]*(?:[\"'`]|\\\")?" + _VALUE)
_BEARER = re.compile(r"(?P<name>bearer(?<![a-z0-9_]bearer)|token(?<![a-z0-9_]token))[ \t]+"
                     r"(?P<value>[A-Za-z0-9._~+/=!#%*^\-]{12,400})")  # fmt: skip
#: name/value pairs spelt apart: `<add key="ApiKey" value="…"/>`, `- name: API_KEY⏎  value: …`, ECS/Actions JSON
_PAIRED = re.compile(
    r"(?:key(?<![a-z0-9_]key)|name(?<![a-z0-9_]name))[\"']?[ \t]*[:=][ \t]*[\"']?(?P<name>[a-z0-9_.\-]{2,60})"
    r"[\"']?[ \t]*,?[ \t]*\n?[ \t]*[\"']?value[\"']?[ \t]*[:=][ \t]*[\"']?" + _VALUE
)
#: prose: "invalid api key 3f9…", "the password is …", `--password …` (a random-looking value only)
_PROSE = re.compile(
    r"(?P<name>api(?<![a-z0-9_]api)[ _\-]?key|secret(?<![a-z0-9_]secret)(?: key)?|pass(?<![a-z0-9_]pass)(?:word|phrase))"
    r"[ \t]+(?:is[ \t]+|was[ \t]+)?[\"']?"
    r"(?P<value>[A-Za-z0-9._~+/=!#%*^\-]{12,400})"
)
_PROSE_WORDS = ("key", "secret", "password", "passphrase")
_BASIC = re.compile(r"basic(?<![a-z0-9_]basic)\s+(?P<value>[A-Za-z0-9+/]{12,}={0,2})(?![A-Za-z0-9+/=])")
_URL_PASSWORD = re.compile(
    r"://(?P<user>[^/\s:@\"'<>]{0,100}):(?P<value>[^/\s@\"'<>]{3,200})@[A-Za-z0-9.\-\[\]]"
)
_SCHEME = re.compile(r"(?<![a-z0-9_])[a-z][a-z0-9+.\-]{1,20}\Z")
#: a name with one of these words binds something else: a digest, an id, a path, a limit, a cache key …
_NOT_SECRET_WORDS = frozenset({
    "hash", "hashed", "digest", "sum", "checksum", "sha", "md", "fingerprint", "id", "ids", "uuid", "etag", "nonce",
    "salt", "version", "count", "length", "len", "path", "file", "url", "uri", "endpoint", "name", "type", "prefix",
    "header", "field", "expires", "expiry", "ttl", "limit", "tokens", "max", "min", "at", "kind", "mode", "format",
    "policy", "public", "cache", "primary", "foreign", "sort", "partition", "idempotency", "dedup", "lookup",
    "routing", "row", "column", "publishable",
})  # fmt: skip
#: shapes that are public by design: Stripe's publishable keys, Langfuse's public keys
_PUBLIC = re.compile(r"pk_(?:live|test)_|pk-lf-")
_SEGMENT = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")
_HEX_DIGEST = re.compile(r"[0-9a-fA-F]{32}|[0-9a-fA-F]{40}|[0-9a-fA-F]{56}|[0-9a-fA-F]{64}|[0-9a-fA-F]{96}|[0-9a-fA-F]{128}")  # fmt: skip
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_DOTTED = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*(?:\.[A-Za-z_$][A-Za-z0-9_$]*)+\.?")
_PLACEHOLDER_SHAPE = re.compile(r"(?i)[x*.•#_\-]+|pass(?:wo?r?d)?|secret|pwd|[A-Za-z_\-]{0,15}[_\-]")
_PLACEHOLDER_WORD = re.compile(  # searched in the lower-cased value
    r"your|example|changeme|placeholder|redacted|replace|dummy|fake|passw|not[_\-]?a[_\-]?real|xxxx|\*\*\*|\.\.\.|…|"
    r"<|>|\$|\{|\}|%\(|environ|getenv|secret_?manager|insert|here|todo|fixme|none|null|undefined|true|false"
)
_CAMEL_PART = re.compile(r"[A-Z][a-z]+|[A-Z]+(?![a-z])|\d{1,5}")
_CAMEL = re.compile(f"[a-z]*(?:{_CAMEL_PART.pattern})+")
_PATH = re.compile(r"[\w.\-]*(?:/[\w.\-]+)+\.[A-Za-z][A-Za-z0-9]{0,4}")  # docs/secrets.md, a/b/README.md
_CAMEL_WORD = re.compile(r"[A-Z][a-z]{2,}")
_VOWEL = re.compile(r"[aeiouy]")
_KEBAB = re.compile(r"[a-z]+(?:[_\-][a-z]+)*")  # snake_case or kebab-case words
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z_]*")  # a word, a type, a constant's name: no digit, no randomness
_CODE_AFTER = re.compile(r"[(\[]")  # `secret = make_key2(…)`, `token = tokens3[i]`
_PORTISH = re.compile(r"\d{1,5}\W*|.*\\.*")  # "host:80+&@", "127.1.1.1:80\\@": URL tricks, not credentials
_VENDOR_HINTS = (("mistral", "mistral"), ("cohere", "cohere"), ("together", "together"), ("azure", "azure"),
                 ("aws_secret", "aws-secret-access-key"), ("secret_access_key", "aws-secret-access-key"),
                 ("secretaccesskey", "aws-secret-access-key"))  # fmt: skip
_AWS_SECRET = re.compile(r"(?<![A-Za-z0-9/+])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])")


def _not_secret_name(name: str) -> bool:
    """``token_hash``, ``SUBSCRIPTION_ID_KEY``, ``publicKeyToken``, ``cache_key``: not a secret's name."""
    return any(segment.lower() in _NOT_SECRET_WORDS for segment in _SEGMENT.findall(name))


def _camel_case(value: str) -> bool:
    """Words in CamelCase (``PKCS12PrivateKeyTypes``): long capitalised runs, each with a vowel, ~30% vowels
    in all. Random letters pass about once in 1,500 (34 letters, a Hugging Face token) to 7,000 (20 alnum)."""
    if not _CAMEL.fullmatch(value):
        return False
    words = _CAMEL_WORD.findall(value)
    if len(words) < 2 or not sum(map(len, words)) * 2 >= len(value) >= 4 * len(_CAMEL_PART.findall(value)):
        return False
    letters = "".join(words).lower()
    return all(_VOWEL.search(w, 1) for w in words) and sum(c in "aeiou" for c in letters) >= 0.3 * len(
        letters
    )


def _word(value: str) -> bool:
    """An identifier, a type or a constant's name (``Tokenizer``, ``SECRET_PREFIX``,
    ``PKCS12PrivateKeyTypes``), not random letters."""
    if _camel_case(value):
        return True
    if not _IDENTIFIER.fullmatch(value):
        return False
    upper = sum(c.isupper() for c in value) / len(value)
    return "_" in value or len(value) < 20 or not 0.3 <= upper <= 0.7


def _placeholder(value: str) -> bool:
    """``xxxx``, ``your-key-here``, ``${DB_PASSWORD}``, ``changeme``, ``<token>``: a stand-in, not a secret."""
    return bool(_PLACEHOLDER_SHAPE.fullmatch(value) or _PLACEHOLDER_WORD.search(value.lower()))


def entropy(value: str) -> float:
    """Shannon entropy of ``value`` in bits per character."""
    n = len(value)
    return -sum(c / n * math.log2(c / n) for c in Counter(value).values()) if n else 0.0


def _classes(value: str) -> int:
    """How many of lower case, upper case, digits and other characters ``value`` holds."""
    has_digit = any(map(str.isdigit, value))
    return (value != value.upper()) + (value != value.lower()) + has_digit + (not value.isalnum())


def looks_random(value: str, *, strict: bool = False) -> bool:
    """A value a person or a machine chose at random, not a word, an identifier or a digest."""
    value = value.rstrip(".")
    if len(value) < (20 if strict else 8) or _placeholder(value) or _PATH.fullmatch(value):
        return False
    if _HEX_DIGEST.fullmatch(value) or _UUID.fullmatch(value) or _DOTTED.fullmatch(value):
        return False
    if value.isdigit() or _KEBAB.fullmatch(value):
        return False
    letters = [c for c in value.lower() if c.isalpha()]
    if (
        letters
        and not any(c.isdigit() for c in value)
        and not (value.isalpha() and not _word(value))  # random mixed case: _word has judged it
        and sum(c in "aeiou" for c in letters) / len(letters) >= 0.3
    ):
        return False  # words ("io.modelcontextprotocol/subscriptionId"): random letters hold ~19% vowels
    if strict:
        return (_classes(value) >= 3 or (value.isalpha() and not _word(value))) and entropy(value) >= 3.5
    return _classes(value) >= 2 and entropy(value) >= (2.5 if len(value) < 16 else 3.0)


def _line_starts(text: str) -> list[int]:
    return [0, *(match.end() for match in re.finditer("\n", text))]


def mask(secret: str) -> str:
    """A preview safe to print: a short head of the secret and its length."""
    head = secret[: min(8, len(secret) // 4)]
    return f"{head}…({len(secret)} chars)"


class _Spans:
    """The spans already claimed by a finding; a later rule may not report an overlapping one."""

    def __init__(self) -> None:
        self.taken: list[tuple[int, int]] = []

    def free(self, start: int, end: int) -> bool:
        return not any(start < e and s < end for s, e in self.taken)

    def claim(self, start: int, end: int) -> bool:
        if not self.free(start, end):
            return False
        self.taken.append((start, end))
        return True


_NEEDLES = tuple(dict.fromkeys(needle for rule in SHAPED for needle in rule.needles))
_Raw = tuple[str, int, int, bool]  # kind, start, end, verified


def _glued(text: str, at: int, left: frozenset[str]) -> bool:
    """A match at ``at`` is the tail of a longer token (``xsk-…``), unless an escape (``\\n`` in JSON) ends it."""
    before = text[at - 1] if at else ""
    return before in left and not (before in "nrt" and text[at - 2 : at - 1] == "\\")


def _shaped(text: str, spans: _Spans) -> Iterator[_Raw]:
    present = {needle for needle in _NEEDLES if needle in text}
    if not present:
        return
    for rule in SHAPED:
        if present.isdisjoint(rule.needles):
            continue
        for match in rule.pattern.finditer(text):
            start, end = match.span(rule.group)
            if _glued(text, match.start(), rule.left):
                continue
            value = text[start:end]
            if (rule.check is None or rule.check(value)) and spans.claim(start, end):
                yield rule.kind, start, end, bool(rule.verify and rule.verify(value))


def _lowered(text: str) -> str:
    """``text`` in lower case with the same offsets (a few characters lower-case to two: kept as they are)."""
    low = text.lower()
    if len(low) == len(text):
        return low
    return "".join(c if len(c.lower()) != 1 else c.lower() for c in text)


def _hits(low: str, words: Sequence[str]) -> list[int]:
    found = []
    for word in words:
        at = low.find(word)
        while at >= 0:
            found.append(at)
            at = low.find(word, at + 1)
    return sorted(found)


def _named_matches(low: str) -> Iterator[re.Match[str]]:
    """``_NAMED.finditer(low)``, but trying only the places a name can start: the start of a run of name
    characters, or just after a ``.`` or ``-`` in one, at most 68 characters before a secret-like word."""
    done = end = 0  # every start before ``done`` has been tried; matches may not overlap before ``end``
    for hit in _hits(low, _NAME_WORDS):
        if hit < end:
            continue
        lo = max(done, end, hit - 68)
        first = hit
        while first > lo and low[first - 1] in _NAME_CHARS:
            first -= 1
        done = hit + 1
        for start in range(first, hit + 1):
            if start and low[start - 1] in _WORD_CHARS:
                continue  # inside a word: ``(?<![a-z0-9_])`` would fail here
            match = _NAMED.match(low, start)
            if match:
                end = match.end()
                yield match
                break


def _named_kind(name: str) -> str:
    lowered = name.lower()
    for hint, kind in _VENDOR_HINTS:
        if hint in lowered:
            return kind
    return "password" if re.search(r"passw|pwd|pass\b", lowered) else "generic-secret"


def _pairs(low: str) -> Iterator[re.Match[str]]:
    """Every name bound to a value, in the three spellings (``name=value``, name/value pairs, prose)."""
    yield from _named_matches(low)
    if "value" in low:
        yield from _PAIRED.finditer(low)
    if any(word in low for word in _PROSE_WORDS):
        yield from _PROSE.finditer(low)


def _url_passwords(text: str, low: str, spans: _Spans) -> Iterator[_Raw]:
    for match in _URL_PASSWORD.finditer(text):
        if not _SCHEME.search(low, max(0, match.start() - 21), match.start()):
            continue
        value = match.group("value")
        if not _placeholder(value) and not _PORTISH.fullmatch(value) and spans.claim(*match.span("value")):
            yield "url-password", *match.span("value"), False


def _named(text: str, low: str, spans: _Spans) -> Iterator[_Raw]:
    if "://" in text:
        yield from _url_passwords(text, low, spans)
    for match in _pairs(low):
        name = text[match.start("name") : match.end("name")]
        start = match.start("value")
        raw = text[start : match.end("value")]
        value = raw.rstrip(":.")  # "key=…: 401", "…."
        if not spans.free(start, start + len(value)):
            continue  # a vendor shape has it already: no need to judge it again
        if _not_secret_name(name) or "://" in value or _word(value):
            continue
        if _PUBLIC.match(value) or raw.endswith("..."):  # public by design; a truncated example
            continue
        if _CODE_AFTER.match(text, start + len(value)) and text[start - 1 : start] not in "\"'`":
            continue  # an unquoted expression: `secret = make_key(…)`, `key = settings.x + y`
        kind = _named_kind(name)
        if kind == "generic-secret":  # "calling cohere with key=…": the vendor named just before
            kind = _named_kind(text[max(0, match.start() - 48) : match.start()].replace("secret", ""))
            kind = kind if kind not in ("password", "aws-secret-access-key") else "generic-secret"
        if match.re is _PROSE:  # "invalid api key 3f9a…": hex keys too, after "api key" only
            hexkey = "api" in name.lower() and bool(_HEX_DIGEST.fullmatch(value) or _UUID.fullmatch(value))
            found = entropy(value) >= 2.5 if hexkey else looks_random(value, strict=True)
        elif _STRONG.search(name):
            # hex and UUID values are keys when a secret name is bound to them (Azure, Datadog, Heroku …)
            shaped = _HEX_DIGEST.fullmatch(value) or _UUID.fullmatch(value)
            found = entropy(value) >= 2.5 if shaped else looks_random(value)
        else:
            found = bool(_TOKEN_ALPHABET.fullmatch(value)) and looks_random(value, strict=True)
        if found and spans.claim(start, start + len(value)):
            yield kind, start, start + len(value), False
    if "bearer" in low or "token" in low:
        for match in _BEARER.finditer(low):
            start = match.start("value")
            value = text[start : match.end("value")].rstrip(".")
            if match.group("name") == "token":
                found = looks_random(value, strict=True)
            else:  # a bearer token: hex and UUID ones too
                shaped = _HEX_DIGEST.fullmatch(value) or _UUID.fullmatch(value)
                found = entropy(value) >= 2.5 if shaped else not _word(value) and looks_random(value)
            if found and spans.claim(start, start + len(value)):
                yield "bearer-token", start, start + len(value), False
    if "basic" in low:
        for match in _BASIC.finditer(low):
            value = text[match.start("value") : match.end("value")]
            if looks_random(value, strict=True) and spans.claim(*match.span("value")):
                yield "basic-auth", *match.span("value"), False


def _aws_beside(text: str, spans: _Spans, starts: list[int], ids: list[int]) -> Iterator[_Raw]:
    """40-character AWS secret keys within three lines of an access key id, whatever their name."""
    for at in ids:
        line = _line_of(starts, at)
        lo = starts[max(0, line - 3)]
        hi = starts[line + 4] if line + 4 < len(starts) else len(text)
        for match in _AWS_SECRET.finditer(text, lo, hi):
            value = match.group(0)
            if _mixed(value) and any(c.isdigit() for c in value) and spans.claim(*match.span()):
                yield "aws-secret-access-key", *match.span(), False


def _found(text: str) -> list[_Raw]:
    """The one core of ``scan_text`` and ``credential_spans``: (kind, start, end, verified), sorted."""
    spans = _Spans()
    raw = list(_shaped(text, spans))
    aws_ids = [start for kind, start, _, _ in raw if kind == "aws-access-key-id"]
    if aws_ids:
        raw.extend(_aws_beside(text, spans, _line_starts(text), aws_ids))
    raw.extend(_named(text, _lowered(text), spans))
    return sorted(raw, key=lambda r: r[1])


def credential_spans(text: str) -> list[tuple[int, int, str]]:
    """Every credential in ``text`` as ``(start, end, kind)``: sorted, non-overlapping offsets covering
    exactly the secret value (never its name), so ``text[start:end]`` is what to mask.

    The redaction entry point (log lines, span attributes, tool results): it ignores the allowlist
    pragma, because a line a person vouched for in the repository must still be masked once logged.
    Some 25 µs for a 200-character log line with no credential (benchmarks/secrets/README.md).
    """
    return [(start, end, kind) for kind, start, end, _ in _found(text)]


def scan_text(text: str, *, path: str | None = None) -> list[Finding]:
    """Every credential in ``text``, in the order they appear (lines carrying ``ALLOW`` left out)."""
    raw = _found(text)
    if not raw:
        return []
    starts = _line_starts(text)
    findings = []
    for kind, start, end, verified in raw:
        line = _line_of(starts, start)
        if ALLOW in text[starts[line] : starts[line + 1] if line + 1 < len(starts) else len(text)]:
            continue
        column, preview = start - starts[line] + 1, mask(text[start:end])
        findings.append(Finding(kind, line + 1, column, preview, start, end - start, verified, path))
    return findings


def _line_of(starts: list[int], offset: int) -> int:
    return bisect_right(starts, offset) - 1


def iter_files(paths: Iterable[str | Path], exclude: Sequence[str] = ()) -> Iterator[Path]:
    """The text files under ``paths`` worth scanning (VCS, venvs, caches, binaries, big files skipped;
    ``exclude``: glob patterns matched against each file's path relative to the folder scanned)."""
    for root in map(Path, paths):
        if root.is_file():
            candidates: Iterable[Path] = (root,)
        else:
            candidates = sorted(
                p
                for p in root.rglob("*")
                if not SKIP_DIRS.intersection(p.relative_to(root).parts)
                and not any(fnmatch(p.relative_to(root).as_posix(), pattern) for pattern in exclude)
            )
        for file in candidates:
            if not file.is_file() or file.is_symlink() or file.stat().st_size > MAX_BYTES:
                continue
            with file.open("rb") as handle:
                if b"\0" in handle.read(8192):
                    continue
            yield file


def scan_paths(paths: Iterable[str | Path], exclude: Sequence[str] = ()) -> list[Finding]:
    """``scan_text`` over every file ``iter_files`` yields."""
    findings: list[Finding] = []
    for file in iter_files(paths, exclude):
        text = file.read_bytes().decode("utf-8", errors="replace")
        findings.extend(scan_text(text, path=str(file)))
    return findings
