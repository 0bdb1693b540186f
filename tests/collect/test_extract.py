"""Page extraction: main text and metadata through trafilatura, links, language, charset, bad HTML."""

from __future__ import annotations

import codecs
import hashlib

import pytest
import trafilatura

from sophia.collect.extract import TRAFILATURA_OPTIONS, decode_html, detect_language, extract

PARAGRAPHS = [
    "The harbour authority approved the new container terminal on Tuesday after two years of debate "
    "between the city council, the port operators and the residents of the northern district.",
    "According to the plan, the terminal will double the port's capacity by 2030 and create about "
    "four hundred permanent jobs, most of them in logistics and maintenance of the cranes.",
    "Critics warned that the additional lorry traffic would worsen air quality on the ring road, and "
    "asked the authority to fund a rail connection before the first ships arrive at the quay.",
    "The operators said they would publish noise measurements every month and meet the residents' "
    "association twice a year to discuss complaints about the night shifts.",
]

ARTICLE = f"""<!DOCTYPE html>
<html lang="en-GB">
<head>
  <meta charset="utf-8">
  <title>Harbour approves terminal | Coastal Times</title>
  <meta name="author" content="Jane Doe">
  <meta name="description" content="The new container terminal doubles the port's capacity.">
  <meta property="og:site_name" content="Coastal Times">
  <meta property="og:title" content="Harbour approves new container terminal">
  <meta property="article:published_time" content="2024-03-05T09:30:00+01:00">
  <base href="https://news.example.com/section/">
</head>
<body>
  <nav><a href="/">Home</a> <a href="/politics">Politics</a> <a href="#top">Top</a></nav>
  <article>
    <h1>Harbour approves new container terminal</h1>
    <p>{PARAGRAPHS[0]}</p>
    <p>{PARAGRAPHS[1]} <a href="plan.pdf#page=2">Read the plan</a>.</p>
    <p>{PARAGRAPHS[2]}</p>
    <p>{PARAGRAPHS[3]} <a href="https://other.example.org/noise">Noise data</a></p>
  </article>
  <div class="comments" id="comments">
    <h3>Comments</h3>
    <div class="comment"><p>Reader comment: this terminal is a terrible idea for the whole neighbourhood.</p></div>
  </div>
  <footer>
    <a href="mailto:desk@example.com">Contact</a> <a href="javascript:void(0)">Print</a>
    <a href="/politics">Politics</a> <a href="//cdn.example.net/app">App</a> <a href="ftp://files.example.com/x">FTP</a>
    <map><area href="/map/north" alt="north"></map>
    <p>Copyright 2024 Coastal Times. All rights reserved.</p>
  </footer>
</body>
</html>"""

URL = "https://news.example.com/section/harbour-terminal?utm=1"


def test_main_text_and_metadata() -> None:
    page = extract(ARTICLE, URL)
    assert page.url == URL
    for paragraph in PARAGRAPHS:
        assert paragraph in page.text
    assert "Reader comment" not in page.text  # comments are not the document
    assert "All rights reserved" not in page.text
    assert page.title == "Harbour approves new container terminal"
    assert page.author == "Jane Doe"
    assert page.date == "2024-03-05"
    assert page.sitename == "Coastal Times"
    assert page.description == "The new container terminal doubles the port's capacity."
    assert page.language == "en"
    assert page.content_hash == hashlib.sha256(page.text.encode()).hexdigest()


def test_text_is_what_trafilatura_returns() -> None:
    assert extract(ARTICLE, URL).text == trafilatura.extract(ARTICLE, url=URL, **TRAFILATURA_OPTIONS)


def test_links_absolute_deduplicated_http_only() -> None:
    links = extract(ARTICLE, URL).links
    assert links == [
        "https://news.example.com/",
        "https://news.example.com/politics",
        "https://news.example.com/section/plan.pdf",  # relative to <base href>, fragment dropped
        "https://other.example.org/noise",
        "https://cdn.example.net/app",
        "https://news.example.com/map/north",
    ]


def test_links_resolve_against_the_page_without_base() -> None:
    html = '<html><body><p>x</p><a href="next.html">n</a><a href=" ../up ">u</a><a href="http://[::1">bad</a></body></html>'
    assert extract(html, "https://e.test/a/b/page.html").links == [
        "https://e.test/a/b/next.html",
        "https://e.test/a/up",
    ]


def test_same_content_same_hash() -> None:
    first = extract(ARTICLE, URL)
    again = extract(ARTICLE.replace("<nav>", "<nav><a href='/new'>New</a>"), URL)
    changed = extract(ARTICLE.replace("four hundred", "five hundred"), URL)
    assert first.content_hash == again.content_hash
    assert first.content_hash != changed.content_hash


# --- charset ------------------------------------------------------------------------------------


def _page(body: str, head: str = "") -> str:
    return f"<html><head>{head}<title>t</title></head><body><article><p>{body}</p></article></body></html>"


def test_header_charset_wins_over_meta() -> None:
    raw = _page("Café crème brûlée", '<meta charset="utf-8">').encode("cp1252")
    assert "Café crème brûlée" in decode_html(raw, "windows-1252")
    assert "Café crème brûlée" in decode_html(raw, '"windows-1252"')  # quoted, as in a Content-Type header


def test_meta_charset_with_browser_labels() -> None:
    raw = _page(
        "Idealen \u2026 und \u201emehr\u201c",
        '<meta http-equiv="Content-Type" content="text/html; charset=iso-8859-1">',
    )
    decoded = decode_html(raw.encode("cp1252"))
    assert "Idealen … und „mehr“" in decoded  # ISO-8859-1 is read as windows-1252, as browsers do
    raw = _page("Привет, мир", '<meta charset="koi8-r">').encode("koi8-r")
    assert "Привет, мир" in decode_html(raw)


def test_bom_and_utf8_default() -> None:
    assert "ツ" in decode_html(codecs.BOM_UTF16_LE + _page("ツ").encode("utf-16-le"), "latin-1")
    assert "ü" in decode_html(codecs.BOM_UTF8 + _page("ü").encode())
    assert "naïve" in decode_html(_page("naïve").encode())
    broken = decode_html(_page("ok").encode() + b"\xff\xfe\xfa")
    assert "ok" in broken and "\ufffd" in broken
    assert "x" in decode_html(_page("x", '<meta charset="no-such-charset">').encode())


def test_bytes_are_extracted_like_text() -> None:
    from_bytes = extract(ARTICLE.encode("utf-8"), URL)
    assert from_bytes == extract(ARTICLE, URL)
    latin = ARTICLE.replace('<meta charset="utf-8">', '<meta charset="windows-1252">').replace(
        "harbour", "härbour"
    )
    assert "härbour" in extract(latin.encode("cp1252"), URL).text


# --- language -----------------------------------------------------------------------------------


def test_language_falls_back_to_the_text() -> None:
    html = ARTICLE.replace(' lang="en-GB"', "")
    assert extract(html, URL).language == "en"
    german = (
        "Die Stadt hat den neuen Hafen am Dienstag genehmigt, nachdem der Rat und die Anwohner lange "
        "über die Pläne gestritten hatten. Die Betreiber wollen auch die Lärmwerte jeden Monat veröffentlichen."
    )
    assert detect_language(german) == "de"
    assert (
        detect_language(
            "東京都は新しい港の計画を火曜日に承認しました。この計画によると、ターミナルは港の能力を二倍にします。"
        )
        == "ja"
    )
    assert detect_language("ok") is None
    assert detect_language("1234 5678 9012 3456 7890") is None


def test_declared_language_from_meta() -> None:
    html = ARTICLE.replace(' lang="en-GB"', "").replace(
        '<meta charset="utf-8">', '<meta charset="utf-8"><meta http-equiv="content-language" content="fr-CA">'
    )
    assert extract(html, URL).language == "fr"


# --- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "html",
    [
        "",
        "   ",
        b"",
        "<<<>>>",
        "not html at all",
        b"\x00\x01\x02\xff\xfe binary",
        "<html><body><p>Unclosed <b>bold <i>italic <div>block</p></span></html>",
        "<html><body>" + "<div>" * 5000 + "deep" + "</div>" * 10 + "</body></html>",
        "<html><head><title>Only a title</title></head><body></body></html>",
        "<?xml version='1.0' encoding='utf-8'?><html><body><p>xml declaration</p></body></html>",
    ],
)
def test_malformed_html_never_raises(html: str | bytes) -> None:
    page = extract(html, "https://e.test/")
    assert isinstance(page.text, str)
    assert page.content_hash == hashlib.sha256(page.text.encode()).hexdigest()


def test_empty_extraction_keeps_metadata() -> None:
    page = extract(
        '<html lang="de"><head><title>Nur ein Titel</title><meta name="author" content="Max"></head>'
        '<body><a href="/x"><img src="/x.png"></a></body></html>',
        "https://e.test/",
    )
    assert page.text == ""
    assert page.title == "Nur ein Titel"
    assert page.language == "de"
    assert page.links == ["https://e.test/x"]
