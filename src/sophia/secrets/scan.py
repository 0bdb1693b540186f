"""Credentials in files and log lines: today's key formats, found by their published shapes.

``scan_text`` reports each credential as a ``Finding`` (kind, line, column, a masked preview; never
the secret itself). Two families of rules, tried in this order, the first to claim a span wins:

- **shaped rules**, one per vendor format: a fixed prefix, a length and an alphabet (and GitHub's
  CRC32 checksum, reported as ``verified``). These fire wherever the key appears: code, config,
  JSON, URLs, free log text;
- **named rules**, for values with no shape of their own (passwords, Mistral and Cohere keys, AWS
  secret keys, bearer tokens): a value is reported only when a secret-like name is bound to it
  (``password=``, ``"api_key":``, ``Authorization: Bearer``, ``user:pass@`` in a URL) *and* it
  looks random. Hex digests of hash length, UUIDs, dotted identifiers, placeholders and ``${VAR}``
  references are never reported, and hashes, UUIDs, base64 blobs and git SHAs with no secret
  name bound to them are never even considered: precision first for the rules that guess.

A line that carries ``pragma: allowlist secret`` is not reported. ``scan_paths`` walks files and folders, skipping VCS folders, virtual environments, caches,
binaries and files over ``MAX_BYTES``.
"""

from __future__ import annotations

import math
import re
import zlib
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


def _b62(number: int, width: int) -> str:
    digits = ""
    while number:
        number, rest = divmod(number, 62)
        digits = _B62[rest] + digits
    return digits.rjust(width, "0")


def github_checksum(body: str) -> str:
    """The six base62 characters GitHub appends to a token's 30-character body (CRC32)."""
    return _b62(zlib.crc32(body.encode()), 6)


def _github_valid(token: str) -> bool:
    body = token.split("_", 1)[1]
    return len(body) == 36 and github_checksum(body[:30]) == body[30:]


# A token starts and ends where the token alphabet does.
_L = r"(?<![A-Za-z0-9_\-])"
_R = r"(?![A-Za-z0-9_\-])"


@dataclass(frozen=True, slots=True)
class _Rule:
    kind: str
    pattern: re.Pattern[str]
    group: int = 0
    check: Callable[[str], bool] | None = None  # the value must pass it to be reported
    verify: Callable[[str], bool] | None = None  # marks a finding ``verified``


def _rule(kind: str, pattern: str, group: int = 0, check: Callable[[str], bool] | None = None,
          verify: Callable[[str], bool] | None = None) -> _Rule:  # fmt: skip
    return _Rule(kind, re.compile(pattern), group, check, verify)


def _mixed(value: str) -> bool:
    return any(c.isupper() for c in value) and any(c.islower() for c in value)


#: vendor formats: (kind, pattern). Prefixes, lengths and alphabets as the vendors publish them,
#: with some slack in the length where a vendor has changed it before.
SHAPED: tuple[_Rule, ...] = (
    _rule(
        "gcp-service-account",
        r"\"private_key\"\s*:\s*\"(-----BEGIN (?:RSA )?PRIVATE KEY-----(?:\\n|\\r|[A-Za-z0-9+/=])+?"
        r"-----END (?:RSA )?PRIVATE KEY-----(?:\\n)?)\"",
        1,
    ),
    _rule(
        "private-key",
        r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----(?:\\[nr]|\s|[A-Za-z0-9+/=:,\-])*?"
        r"[A-Za-z0-9+/]{32}[\s\S]*?(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|\Z)",
    ),
    _rule("anthropic", _L + r"sk-ant-(?:api\d\d|admin\d\d|oat\d\d|ort\d\d)-[A-Za-z0-9_\-]{80,120}" + _R),
    _rule("openrouter", _L + r"sk-or-v1-[0-9a-f]{64}" + _R),
    _rule("openai", _L + r"sk-(?:proj|svcacct|admin|None)-[A-Za-z0-9_\-]{40,250}" + _R),
    _rule("openai", _L + r"sk-[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20}" + _R),
    _rule("openai", _L + r"sk-[A-Za-z0-9]{48}" + _R, check=_mixed),
    _rule("github", _L + r"gh[pousr]_[A-Za-z0-9]{36}" + _R, verify=_github_valid),
    _rule("github", _L + r"github_pat_[A-Za-z0-9_]{70,100}" + _R),
    _rule("huggingface", _L + r"hf_[A-Za-z0-9]{34,40}" + _R, check=_mixed),
    _rule("pulumi", _L + r"pul-[0-9a-f]{40}" + _R),
    _rule("aws-access-key-id", r"(?<![A-Za-z0-9])(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}(?![A-Za-z0-9])"),
    _rule(
        "slack-webhook",
        r"https://hooks\.slack\.com/(?:services|workflows|triggers)/T[A-Z0-9]{6,12}/[A-Za-z0-9/]{20,80}",
    ),
    _rule("slack", _L + r"xox[abeposr]-\d+-[A-Za-z0-9\-]{16,250}" + _R),
    _rule("slack", _L + r"xapp-\d-[A-Z0-9]{6,14}-\d{6,16}-[a-f0-9]{32,80}" + _R),
    _rule("stripe", _L + r"(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{20,247}" + _R),
    _rule("stripe", _L + r"whsec_[A-Za-z0-9]{32,64}" + _R),
    _rule("google-api-key", _L + r"AIza[0-9A-Za-z_\-]{35}" + _R),
    _rule("jwt", _L + r"eyJ[A-Za-z0-9_\-]{10,}\.eyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{16,}" + _R),
    _rule("tavily", _L + r"tvly-(?:dev-|prod-)?[A-Za-z0-9]{20,64}" + _R),
    _rule("groq", _L + r"gsk_[A-Za-z0-9]{40,64}" + _R),
    _rule("together", _L + r"tgp_v1_[A-Za-z0-9_\-]{40,48}" + _R),
    _rule("replicate", _L + r"r8_[A-Za-z0-9]{37,40}" + _R),
    _rule("deepseek", _L + r"sk-[0-9a-f]{32}" + _R),
    _rule("xai", _L + r"xai-[A-Za-z0-9]{70,90}" + _R),
    _rule("perplexity", _L + r"pplx-[A-Za-z0-9]{40,56}" + _R),
    _rule("fireworks", _L + r"fw_[A-Za-z0-9]{20,30}" + _R, check=_mixed),
    _rule("cerebras", _L + r"csk-[a-z0-9]{40,56}" + _R),
    _rule("gitlab", _L + r"glpat-[A-Za-z0-9_\-]{20,}" + _R),
    _rule("npm", _L + r"npm_[A-Za-z0-9]{36}" + _R),
    _rule("pypi", _L + r"pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_\-]{50,}" + _R),
    _rule("sendgrid", _L + r"SG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43}" + _R),
)

# Names that bind a secret; "strong" ones (password, secret, token …) and the bare "key", which
# needs a more random value.
_NAME = (r"(?P<name>[A-Za-z0-9_.\-]{0,60}?(?:api[_\-.]?key|apikey|secret|passw(?:or)?d|passphrase|(?<![a-z0-9])pwd|"
         r"pass(?![a-z])|token|access[_\-]?key|auth[_\-]?key|credential|private[_\-]?key|(?<![a-z0-9])key)"
         r"[A-Za-z0-9_\-]{0,40})")  # bounded: no quadratic walk over a long identifier  # fmt: skip
#: a name with one of these binds a secret for sure; one with only "key" in it may be a cache key
_STRONG = re.compile(r"(?i)api[ _\-.]?key|apikey|secret|passw|passphrase|pwd|pass(?![a-z])|token|access[_\-]?key|"
                     r"auth|credential|private")  # fmt: skip
_TOKEN_ALPHABET = re.compile(r"[A-Za-z0-9_\-+/=.~]+")
_NAMED = re.compile(
    r"(?i)(?<![A-Za-z0-9_])" + _NAME
    + r"\\?[\"'`]?\]?[ \t]*(?::=|=>|=(?!=)|:)[ \t]*(?:[\"'`]|\\\")?"
    r"(?P<value>[^\s\"'`,;&<>()\[\]{}\\|]{8,400})"
)  # fmt: skip
_BEARER = re.compile(r"(?i)\b(?P<name>bearer|token)[ \t]+(?P<value>[A-Za-z0-9._~+/=!#%*^\-]{12,400})")
#: name/value pairs spelt apart: `<add key="ApiKey" value="…"/>`, `- name: API_KEY⏎  value: …`, ECS/Actions JSON
_PAIRED = re.compile(
    r"(?i)\b(?:key|name)[\"']?[ \t]*[:=][ \t]*[\"']?(?P<name>[A-Za-z0-9_.\-]{2,60})[\"']?[ \t]*,?[ \t]*\n?[ \t]*"
    r"[\"']?value[\"']?[ \t]*[:=][ \t]*[\"']?(?P<value>[^\s\"'`,;&<>()\[\]{}\\|]{8,400})"
)
#: prose: "invalid api key 3f9…", "the password is …" (a random-looking value only)
_PROSE = re.compile(
    r"(?i)\b(?P<name>api[ _\-]?key|secret(?: key)?|password|passphrase)[ \t]+(?:is[ \t]+|was[ \t]+)?[\"']?"
    r"(?P<value>[A-Za-z0-9._~+/=!#%*^\-]{12,400})"
)
_BASIC = re.compile(r"(?i)\bbasic\s+(?P<value>[A-Za-z0-9+/]{12,}={0,2})(?![A-Za-z0-9+/=])")
_URL_PASSWORD = re.compile(
    r"(?i)\b[a-z][a-z0-9+.\-]{1,20}://(?P<user>[^/\s:@\"'<>]{0,100}):(?P<value>[^/\s@\"'<>]{3,200})@"
    r"[A-Za-z0-9.\-\[\]]"
)
#: a name with one of these words binds something else: a digest, an id, a path, a limit, a cache key …
_NOT_SECRET_WORDS = frozenset({
    "hash", "hashed", "digest", "sum", "checksum", "sha", "md", "fingerprint", "id", "ids", "uuid", "etag", "nonce",
    "salt", "version", "count", "length", "len", "path", "file", "url", "uri", "endpoint", "name", "type", "prefix",
    "header", "field", "expires", "expiry", "ttl", "limit", "tokens", "max", "min", "at", "kind", "mode", "format",
    "policy", "public", "cache", "primary", "foreign", "sort", "partition", "idempotency", "dedup", "lookup",
    "routing", "row", "column",
})  # fmt: skip
_SEGMENT = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")
_HEX_DIGEST = re.compile(r"[0-9a-fA-F]{32}|[0-9a-fA-F]{40}|[0-9a-fA-F]{56}|[0-9a-fA-F]{64}|[0-9a-fA-F]{96}|[0-9a-fA-F]{128}")  # fmt: skip
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_DOTTED = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*(?:\.[A-Za-z_$][A-Za-z0-9_$]*)+\.?")
_PLACEHOLDER = re.compile(
    r"(?i)^(?:[x*.•#_\-]+|pass(?:wo?r?d)?|secret|pwd|.*(?:your|example|changeme|placeholder|redacted|replace|"
    r"dummy|fake|passw|not[_\-]?a[_\-]?real|xxxx|\*\*\*|\.\.\.|…|<|>|\$|\{|\}|%\(|environ|getenv|secret_?manager|"
    r"insert|here|todo|fixme|none|null|undefined|true|false).*|[A-Za-z_\-]{0,15}[_\-])$"
)
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


def _word(value: str) -> bool:
    """An identifier, a type or a constant's name (``Tokenizer``, ``SECRET_PREFIX``), not random letters."""
    if not _IDENTIFIER.fullmatch(value):
        return False
    upper = sum(c.isupper() for c in value) / len(value)
    return "_" in value or len(value) < 20 or not 0.3 <= upper <= 0.7


def entropy(value: str) -> float:
    """Shannon entropy of ``value`` in bits per character."""
    if not value:
        return 0.0
    counts: dict[str, int] = {}
    for char in value:
        counts[char] = counts.get(char, 0) + 1
    n = len(value)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


def _classes(value: str) -> int:
    return (
        any(c.islower() for c in value)
        + any(c.isupper() for c in value)
        + any(c.isdigit() for c in value)
        + any(not c.isalnum() for c in value)
    )


def looks_random(value: str, *, strict: bool = False) -> bool:
    """A value a person or a machine chose at random, not a word, an identifier or a digest."""
    value = value.rstrip(".")
    if len(value) < (20 if strict else 8) or _PLACEHOLDER.match(value):
        return False
    if _HEX_DIGEST.fullmatch(value) or _UUID.fullmatch(value) or _DOTTED.fullmatch(value):
        return False
    if value.isdigit() or re.fullmatch(r"[a-z]+(?:[_\-][a-z]+)*", value):
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
    starts = [0]
    starts.extend(i + 1 for i, c in enumerate(text) if c == "\n")
    return starts


def mask(secret: str) -> str:
    """A preview safe to print: a short head of the secret and its length."""
    head = secret[: min(8, len(secret) // 4)]
    return f"{head}…({len(secret)} chars)"


class _Spans:
    """The spans already claimed by a finding; a later rule may not report an overlapping one."""

    def __init__(self) -> None:
        self.taken: list[tuple[int, int]] = []

    def claim(self, start: int, end: int) -> bool:
        if any(start < e and s < end for s, e in self.taken):
            return False
        self.taken.append((start, end))
        return True


def _shaped(text: str, spans: _Spans) -> Iterator[tuple[str, int, int, bool]]:
    for rule in SHAPED:
        for match in rule.pattern.finditer(text):
            value = match.group(rule.group)
            if rule.check is not None and not rule.check(value):
                continue
            start, end = match.span(rule.group)
            if spans.claim(start, end):
                yield rule.kind, start, end, bool(rule.verify and rule.verify(value))


def _named_kind(name: str) -> str:
    lowered = name.lower()
    for hint, kind in _VENDOR_HINTS:
        if hint in lowered:
            return kind
    return "password" if re.search(r"passw|pwd|pass\b", lowered) else "generic-secret"


def _named(text: str, spans: _Spans) -> Iterator[tuple[str, int, int, bool]]:
    for match in _URL_PASSWORD.finditer(text):
        value = match.group("value")
        if (
            not _PLACEHOLDER.match(value)
            and not _PORTISH.fullmatch(value)
            and spans.claim(*match.span("value"))
        ):
            yield "url-password", *match.span("value"), False
    for match in _pairs(text):
        name, value = match.group("name"), match.group("value").rstrip(":.")  # "key=…: 401", "…."
        start = match.start("value")
        if _not_secret_name(name) or "://" in value or _word(value):
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
    for match in _BEARER.finditer(text):
        value = match.group("value").rstrip(".")
        if match.group("name").lower() == "token":
            found = looks_random(value, strict=True)
        else:  # a bearer token: hex and UUID ones too
            shaped = _HEX_DIGEST.fullmatch(value) or _UUID.fullmatch(value)
            found = entropy(value) >= 2.5 if shaped else not _word(value) and looks_random(value)
        start = match.start("value")
        if found and spans.claim(start, start + len(value)):
            yield "bearer-token", start, start + len(value), False
    for match in _BASIC.finditer(text):
        if looks_random(match.group("value"), strict=True) and spans.claim(*match.span("value")):
            yield "basic-auth", *match.span("value"), False


def _pairs(text: str) -> Iterator[re.Match[str]]:
    """Every name bound to a value, in the three spellings (``name=value``, name/value pairs, prose)."""
    yield from _NAMED.finditer(text)
    yield from _PAIRED.finditer(text)
    yield from _PROSE.finditer(text)


def _aws_beside(
    text: str, spans: _Spans, starts: list[int], ids: list[int]
) -> Iterator[tuple[str, int, int, bool]]:
    """40-character AWS secret keys within three lines of an access key id, whatever their name."""
    for at in ids:
        line = _line_of(starts, at)
        lo = starts[max(0, line - 3)]
        hi = starts[line + 4] if line + 4 < len(starts) else len(text)
        for match in _AWS_SECRET.finditer(text, lo, hi):
            value = match.group(0)
            if _mixed(value) and any(c.isdigit() for c in value) and spans.claim(*match.span()):
                yield "aws-secret-access-key", *match.span(), False


def scan_text(text: str, *, path: str | None = None) -> list[Finding]:
    """Every credential in ``text``, in the order they appear."""
    spans = _Spans()
    raw = list(_shaped(text, spans))
    starts = _line_starts(text)
    aws_ids = [start for kind, start, _, _ in raw if kind == "aws-access-key-id"]
    if aws_ids:
        raw.extend(_aws_beside(text, spans, starts, aws_ids))
    raw.extend(_named(text, spans))
    findings = []
    for kind, start, end, verified in sorted(raw, key=lambda r: r[1]):
        line = _line_of(starts, start)
        if ALLOW in text[starts[line] : starts[line + 1] if line + 1 < len(starts) else len(text)]:
            continue
        findings.append(
            Finding(
                kind=kind,
                line=line + 1,
                column=start - starts[line] + 1,
                preview=mask(text[start:end]),
                offset=start,
                length=end - start,
                verified=verified,
                path=path,
            )
        )
    return findings


def _line_of(starts: list[int], offset: int) -> int:
    lo, hi = 0, len(starts) - 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if starts[mid] <= offset:
            lo = mid
        else:
            hi = mid - 1
    return lo


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
