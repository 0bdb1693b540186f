"""Main text and metadata of a web page, through trafilatura, plus what a crawler needs from the page.

The page is parsed once (trafilatura's own ``load_html``, so its repairs apply): links and the
declared language are read from that tree, then trafilatura's ``bare_extraction`` works on it
(it copies the tree, which costs less than a second parse). ``bare_extraction`` is used rather than
``extract(output_format="json", with_metadata=True)``: the same text and metadata without building
and re-reading a JSON string (benchmarks/collect/README.md has the measurement).

Options are trafilatura's defaults except ``include_comments=False``: reader comments are not the
document (the public benchmarks run trafilatura the same way).
"""

from __future__ import annotations

import codecs
import hashlib
import logging
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

from lxml import etree
from lxml.html import HtmlElement

from sophia.errors import DependencyMissing

__all__ = ["Extracted", "decode_html", "detect_language", "extract"]

_log = logging.getLogger(__name__)

#: trafilatura options Sophia uses; the benchmark calls trafilatura directly with the same ones
TRAFILATURA_OPTIONS: dict[str, object] = {"include_comments": False}


@dataclass(frozen=True, slots=True)
class Extracted:
    url: str
    text: str  # the main text; "" when nothing was found (the caller decides what that means)
    content_hash: str  # sha256 hex of ``text``
    title: str | None = None
    author: str | None = None
    date: str | None = None  # ISO 8601 date (YYYY-MM-DD) of publication, as trafilatura/htmldate found it
    language: str | None = None  # ISO 639-1 code
    sitename: str | None = None
    description: str | None = None
    links: list[str] = field(
        default_factory=list
    )  # absolute http(s) URLs of the page, first occurrence order


# --- charset ------------------------------------------------------------------------------------

_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))
_META_CHARSET = re.compile(
    rb"""<meta[^>]+?charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""",
    re.IGNORECASE,
)
# WHATWG Encoding: labels that browsers read as another encoding than Python's codec of that name
_WHATWG = {
    "iso-8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "l1": "cp1252",
    "ascii": "cp1252",
    "us-ascii": "cp1252",
    "iso8859-1": "cp1252",
    "iso-8859-9": "cp1254",
    "iso-8859-11": "cp874",
    "tis-620": "cp874",
    "x-user-defined": "cp1252",
    "utf-16": "utf-8",  # a page that says utf-16 in a meta tag was readable as ASCII: it is not UTF-16
    "utf-16le": "utf-8",
    "utf-16be": "utf-8",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "shift_jis": "cp932",
    "sjis": "cp932",
    "x-sjis": "cp932",
    "euc-kr": "cp949",
    "ks_c_5601-1987": "cp949",
    "big5": "big5hkscs",
}


def _codec(label: str | None) -> str | None:
    if not label:
        return None
    name = label.strip().strip("\"'").lower()
    name = _WHATWG.get(name, name)
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def decode_html(content: bytes, charset: str | None = None) -> str:
    """The page as text: BOM, then the HTTP header's ``charset``, then ``<meta charset>``, then UTF-8.

    Bytes that do not fit the chosen encoding become U+FFFD rather than an error: a page with a
    few broken bytes still has a main text.
    """
    for bom, name in _BOMS:
        if content.startswith(bom):
            return content[len(bom) :].decode(name, "replace")
    chosen = _codec(charset)
    if chosen is None:
        match = _META_CHARSET.search(content[:4096])
        chosen = _codec(match.group(1).decode("ascii")) if match else None
    return content.decode(chosen or "utf-8", "replace")


# --- language -----------------------------------------------------------------------------------

_LANG_TAG = re.compile(r"^\s*([A-Za-z]{2,3})(?:[-_][A-Za-z0-9]+)*\s*$")


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# a handful of the most frequent words of each language: cheap, and right on a paragraph of prose
_STOPWORDS: dict[str, frozenset[str]] = {
    "en": _words("the and of to in is that for it with as was on are be this by have from"),
    "de": _words("der die und das ist nicht den von zu mit sich des auf für dem ein eine auch"),
    "fr": _words("le la les et des est que une dans pour qui pas sur du au avec sont par ce"),
    "es": _words("el la los las y de que en un una es por con para del se no al como"),
    "it": _words("il la di che e è per un una non sono con del della le gli si da nel"),
    "pt": _words("o a os as de que e do da em um uma para com não no na se por"),
    "nl": _words("de het een en van is dat niet op te in zijn voor met die er ook"),
    "sv": _words("och att det som en är på av för med till den inte har om ett"),
    "da": _words("og at det som en er på af for med til den ikke har om et de"),
    "no": _words("og at det som en er på av for med til den ikke har om et de"),
    "pl": _words("i w na z że się nie do to jest o jak po ale od przez dla"),
    "ru": _words("и в не на что с по как это он к но из за от то"),  # noqa: RUF001 (Cyrillic on purpose)
    "tr": _words("ve bir bu da de için ile çok olan gibi ne daha ama en mi"),
    "id": _words("yang dan di ini dengan untuk dari dalam tidak akan pada itu juga ke"),
}
_SCRIPTS = (
    ("ja", re.compile(r"[\u3040-\u30ff]")),
    ("ko", re.compile(r"[\uac00-\ud7af]")),
    ("zh", re.compile(r"[\u4e00-\u9fff]")),
    ("ar", re.compile(r"[\u0600-\u06ff]")),
    ("he", re.compile(r"[\u0590-\u05ff]")),
    ("el", re.compile(r"[\u0370-\u03ff]")),
    ("th", re.compile(r"[\u0e00-\u0e7f]")),
    ("hi", re.compile(r"[\u0900-\u097f]")),
)
_WORD = re.compile(r"[^\W\d_]+")


def _declared_language(tree: HtmlElement) -> str | None:
    candidates = [tree.get("lang"), tree.get("{http://www.w3.org/XML/1998/namespace}lang")]
    for meta in tree.iterfind(".//meta"):
        key = (meta.get("http-equiv") or meta.get("property") or meta.get("name") or "").lower()
        if key in ("content-language", "og:locale", "language", "dc.language"):
            candidates.append(meta.get("content"))
    for value in candidates:
        match = _LANG_TAG.match(value or "")
        if match:
            return match.group(1).lower()
    return None


def detect_language(text: str) -> str | None:
    """ISO 639-1 code of ``text`` by its script, else by the most frequent words of 14 languages.

    A fallback for pages that declare no language: it tells English from German on a paragraph,
    not Danish from Norwegian, and says None when nothing stands out.
    """
    sample = text[:4000]
    for code, script in _SCRIPTS:
        if len(script.findall(sample)) > 20:
            return code
    words = [w.lower() for w in _WORD.findall(sample)][:600]
    if len(words) < 5:
        return None
    scores = {code: sum(w in common for w in words) for code, common in _STOPWORDS.items()}
    best = max(scores, key=lambda code: scores[code])
    if scores[best] < max(2, len(words) // 20):
        return None
    return best


# --- links --------------------------------------------------------------------------------------


def _links(tree: HtmlElement, url: str) -> list[str]:
    base = url
    for element in tree.iterfind(".//base[@href]"):
        base = urljoin(url, element.get("href", "").strip())
        break
    seen: set[str] = set()
    links: list[str] = []
    for element in tree.iter("a", "area"):
        href = element.get("href")
        if not href:
            continue
        href = href.strip()
        if not href or href[0] == "#":
            continue
        if href[:8].lower().startswith(("http://", "https://")):
            absolute = href  # most links: urljoin would return them as they are, at a cost per link
        else:
            try:
                absolute = urljoin(base, href)
            except ValueError:  # "//[::1" and other unparseable hrefs
                continue
            if not absolute[:8].lower().startswith(("http://", "https://")):
                continue  # mailto:, javascript:, ftp:, data:
        absolute = absolute.split("#", 1)[0]
        if "[" in absolute and not _parses(absolute):
            continue  # an unclosed IPv6 literal: no client could fetch it
        if absolute not in seen:
            seen.add(absolute)
            links.append(absolute)
    return links


def _parses(url: str) -> bool:
    try:
        urlsplit(url)
    except ValueError:
        return False
    return True


# --- extraction ---------------------------------------------------------------------------------


def _trafilatura() -> tuple[Callable[..., Any], Callable[..., Any], Callable[..., Any]]:
    try:
        import trafilatura
        from trafilatura.metadata import extract_metadata
        from trafilatura.utils import load_html
    except ImportError as exc:  # pragma: no cover - trafilatura is a dependency of the collect room
        raise DependencyMissing("trafilatura", purpose="extracting web pages") from exc
    return trafilatura.bare_extraction, extract_metadata, load_html


def _clean(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    value = " ".join(value.split())
    return value or None


def extract(html: str | bytes, url: str, *, charset: str | None = None) -> Extracted:
    """Main text, metadata and links of one page. Never raises on bad HTML: the text is then ""."""
    bare_extraction, extract_metadata, load_html = _trafilatura()
    page = decode_html(html, charset) if isinstance(html, bytes) else html
    tree = load_html(page) if page.strip() else None
    if tree is None:
        return Extracted(url=url, text="", content_hash=hashlib.sha256(b"").hexdigest())
    links = _links(tree, url)
    declared = _declared_language(tree)
    try:
        document = bare_extraction(tree, url=url, with_metadata=True, **TRAFILATURA_OPTIONS)
        if document is None:  # no main text found: keep what the page says about itself
            document = extract_metadata(tree, url)
    except (ValueError, TypeError, RecursionError, etree.LxmlError) as exc:
        _log.warning("extraction of %s failed (%s: %s): empty text", url, type(exc).__name__, exc)
        document = None
    # as trafilatura.extract() returns it: NFC, no leading or trailing whitespace
    text = unicodedata.normalize("NFC", getattr(document, "text", None) or "").strip()
    return Extracted(
        url=url,
        text=text,
        content_hash=hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest(),
        title=_clean(getattr(document, "title", None)),
        author=_clean(getattr(document, "author", None)),
        date=_clean(getattr(document, "date", None)),
        language=declared or _clean(getattr(document, "language", None)) or detect_language(text),
        sitename=_clean(getattr(document, "sitename", None)),
        description=_clean(getattr(document, "description", None)),
        links=links,
    )
