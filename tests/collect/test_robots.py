"""robots.txt: the examples of RFC 9309 and a port of Google's reference tests.

The Google cases come from google/robotstxt ``robots_test.cc`` (Apache-2.0): ID_LineSyntax_Line,
ID_LineSyntax_Groups, ID_LineSyntax_Groups_OtherRules, ID_REPLineNamesCaseInsensitive,
ID_UserAgentValueCaseInsensitive, GoogleOnly_AcceptUserAgentUpToFirstSpace (the first half),
ID_GlobalGroups_Secondary, ID_AllowDisallow_Value_CaseSensitive, ID_LongestMatch, ID_Encoding,
ID_SpecialCharacters, GoogleOnly_DocumentationChecks, ID_LinesNumbersAreCountedCorrectly (as rules that
take effect), ID_UTF8ByteOrderMarkIsSkipped, ID_NonStandardLineExample_Sitemap, GoogleOnly_SystemTest
and TestGetPathParamsQuery. Where Google and RFC 9309 differ we follow the RFC, and say so at the case:
Google leaves the URL's encoding to the caller, RFC 9309 2.2.2 normalises both sides. Left out:
GoogleOnly_IndexHTMLisDirectory and GoogleOnly_LineTooLong (Google's own extensions).
"""

from __future__ import annotations

import pytest

from sophia.collect.robots import MAX_BYTES, UNREACHABLE, Robots, _path_of, normalise_path


def allowed(robotstxt: str, agent: str, url: str) -> bool:
    return Robots.parse(robotstxt, status=200).allowed(url, agent)


# --- RFC 9309 section 5 -------------------------------------------------------------------------

RFC_5_1 = """\
User-Agent: *
Disallow: *.gif$
Disallow: /example/
Allow: /publications/

User-Agent: foobot
Disallow:/
Allow:/example/page.html
Allow:/example/allowed.gif

User-Agent: barbot
User-Agent: bazbot
Disallow: /example/page.html

User-Agent: quxbot

EOF
"""


@pytest.mark.parametrize(
    ("agent", "path", "expected"),
    [
        ("foobot", "/example/page.html", True),
        ("foobot", "/example/allowed.gif", True),
        ("foobot", "/example/other.html", False),
        ("foobot", "/", False),
        ("barbot", "/example/page.html", False),
        ("barbot", "/example/other.html", True),
        ("barbot", "/anything.gif", True),
        ("bazbot", "/example/page.html", False),
        ("bazbot", "/publications/x", True),
        ("quxbot", "/example/page.html", True),
        ("quxbot", "/pic.gif", True),
        ("otherbot", "/pic.gif", False),
        ("otherbot", "/pic.gifs", True),
        ("otherbot", "/example/page.html", False),
        ("otherbot", "/publications/x", True),
        ("otherbot", "/", True),
    ],
)
def test_rfc_simple_example(agent: str, path: str, expected: bool) -> None:
    assert allowed(RFC_5_1, agent, path) is expected


def test_rfc_longest_match_example() -> None:
    robots = "User-Agent: foobot\nAllow: /example/page/\nDisallow: /example/page/disallowed.gif\n"
    assert allowed(robots, "foobot", "/example/page/")
    assert allowed(robots, "foobot", "/example/page/other.gif")
    assert not allowed(robots, "foobot", "/example/page/disallowed.gif")


@pytest.mark.parametrize(
    ("written", "normalised"),
    [
        ("/foo/bar?baz=quz", "/foo/bar?baz=quz"),  # RFC 9309 2.2.2, table row 1
        ("/foo/bar/ツ", "/foo/bar/%E3%83%84"),  # row 3
        ("/foo/bar/%E3%83%84", "/foo/bar/%E3%83%84"),  # row 4
        ("/foo/bar/%62%61%7A", "/foo/bar/baz"),  # row 5
        ("/foo/bar/%e3%83%84", "/foo/bar/%E3%83%84"),
        ("/a b", "/a%20b"),
        ("/100%", "/100%25"),
        ("/a%2Fb", "/a%2Fb"),  # an escaped reserved character stays escaped
    ],
)
def test_rfc_percent_encoding_table(written: str, normalised: str) -> None:
    assert normalise_path(written) == normalised


def test_percent_encoding_is_normalised_on_both_sides() -> None:
    robots = "User-agent: *\nDisallow: /\nAllow: /foo/bar/ツ\nAllow: /café/%62az\n"
    assert allowed(robots, "bot", "http://x.test/foo/bar/%E3%83%84")
    assert allowed(robots, "bot", "http://x.test/foo/bar/ツ")  # Google: false (caller must encode)
    assert allowed(robots, "bot", "http://x.test/caf%C3%A9/baz")
    assert allowed(robots, "bot", "/café/%62%61%7a")
    assert not allowed(robots, "bot", "/cafe/baz")


def test_rfc_special_characters() -> None:
    robots = "User-agent: *\nDisallow: /\nAllow: / # comment in line\n"
    assert allowed(robots, "bot", "/x")  # "/ # comment" is "/": allow wins the tie
    exact = "User-agent: *\nDisallow: /\nAllow: /this/path/exactly$\nAllow: /this/*/exactly\n"
    assert allowed(exact, "bot", "/this/path/exactly")
    assert allowed(exact, "bot", "/this/other/exactly")
    assert allowed(exact, "bot", "/this/path/exactly/more")  # the "*" rule has no "$"
    assert not allowed(exact, "bot", "/this/path/exact")


def test_robots_txt_is_always_allowed() -> None:
    robots = Robots.parse("User-agent: *\nDisallow: /\n", status=200)
    assert robots.allowed("/robots.txt", "bot")
    assert robots.allowed("https://example.com/robots.txt", "bot")
    assert not robots.allowed("/robots.txt.bak", "bot")
    assert Robots.parse("", status=503).allowed("/robots.txt", "bot")


# --- status codes (RFC 9309 2.3.1) -------------------------------------------------------------


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 451, 301, 302])
def test_unavailable_robots_allows_everything(status: int) -> None:
    robots = Robots.parse("User-agent: *\nDisallow: /\n", status=status)
    assert robots.allowed("/private", "bot")
    assert not robots.disallow_all
    assert robots.sitemaps == []


@pytest.mark.parametrize("status", [500, 502, 503, 504, UNREACHABLE])
def test_unreachable_robots_disallows_everything(status: int) -> None:
    robots = Robots.parse(
        "User-agent: *\nAllow: /\nCrawl-delay: 3\nSitemap: https://a.test/s.xml\n", status=status
    )
    assert robots.disallow_all
    assert not robots.allowed("/", "bot")
    assert not robots.allowed("https://a.test/page", "bot")
    assert robots.crawl_delay("bot") is None
    assert robots.sitemaps == []


def test_success_statuses_are_parsed() -> None:
    for status in (200, 203, 206):
        assert not Robots.parse("User-agent: *\nDisallow: /x\n", status=status).allowed("/x", "bot")


def test_parse_limit_ignores_what_follows_500_kib() -> None:
    head = "User-agent: *\nDisallow: /early\n"
    filler = "# " + "x" * (MAX_BYTES) + "\n"
    robots = Robots.parse(head + filler + "Disallow: /late\n", status=200)
    assert robots.truncated
    assert not robots.allowed("/early", "bot")
    assert robots.allowed("/late", "bot")


def test_bytes_body_and_bom() -> None:
    for bom in (b"\xef\xbb\xbf", b"\xef\xbb", b"\xef"):
        robots = Robots.parse(bom + b"User-Agent: foo\nDisallow: /AnyValue\n", status=200)
        assert not robots.allowed("/AnyValue", "foo")
    broken = Robots.parse(b"\xef\x11\xbfUser-Agent: foo\nDisallow: /AnyValue\n", status=200)
    assert broken.allowed("/AnyValue", "foo")  # the first line is garbage: the rule has no group
    middle = Robots.parse(b"User-Agent: foo\n\xef\xbb\xbfDisallow: /AnyValue\n", status=200)
    assert middle.allowed("/AnyValue", "foo")


# --- crawl-delay and sitemaps --------------------------------------------------------------------


def test_crawl_delay_per_group() -> None:
    robots = Robots.parse(
        "User-agent: *\nCrawl-delay: 10\nDisallow: /x\n\n"
        "User-agent: SophiaBot\nCrawl-delay: 2.5\nDisallow: /y\n\n"
        "User-agent: other\nCrawl-delay: soon\n",
        status=200,
    )
    assert robots.crawl_delay("SophiaBot/1.0 (+https://sophia.test)") == 2.5
    assert robots.crawl_delay("somebot") == 10
    assert robots.crawl_delay("other") is None
    assert Robots.parse("User-agent: *\nCrawl-delay: -1\n", status=200).crawl_delay("x") is None


def test_sitemaps_anywhere_in_file_deduplicated() -> None:
    robots = Robots.parse(
        "Sitemap: https://a.test/one.xml\nUser-Agent: foo\nAllow: /some/path\nUser-Agent: bar\n\n\n"
        "sitemap: https://a.test/two.xml.gz\nSITEMAP: https://a.test/one.xml\n",
        status=200,
    )
    assert robots.sitemaps == ["https://a.test/one.xml", "https://a.test/two.xml.gz"]


def test_agent_matching_uses_the_product_token_not_a_substring() -> None:
    robots = "User-agent: bot\nDisallow: /\n"
    assert not allowed(robots, "Bot/2.0", "/x")
    assert allowed(robots, "SophiaBot/1.0", "/x")  # "bot" is not the product token "sophiabot"


# --- Google's robots_test.cc --------------------------------------------------------------------


def test_google_system_test() -> None:
    robots = "user-agent: FooBot\ndisallow: /\n"
    assert allowed("", "FooBot", "")
    assert allowed(robots, "", "")
    assert not allowed(robots, "FooBot", "")
    assert allowed("", "", "")


def test_google_line_syntax() -> None:
    url = "http://foo.bar/x/y"
    assert not allowed("user-agent: FooBot\ndisallow: /\n", "FooBot", url)
    assert allowed("foo: FooBot\nbar: /\n", "FooBot", url)
    assert not allowed("user-agent FooBot\ndisallow /\n", "FooBot", url)


def test_google_groups() -> None:
    robots = (
        "allow: /foo/bar/\n\nuser-agent: FooBot\ndisallow: /\nallow: /x/\nuser-agent: BarBot\n"
        "disallow: /\nallow: /y/\n\n\nallow: /w/\nuser-agent: BazBot\n\nuser-agent: FooBot\n"
        "allow: /z/\ndisallow: /\n"
    )
    assert allowed(robots, "FooBot", "http://foo.bar/x/b")
    assert allowed(robots, "FooBot", "http://foo.bar/z/d")
    assert not allowed(robots, "FooBot", "http://foo.bar/y/c")
    assert allowed(robots, "BarBot", "http://foo.bar/y/c")
    assert allowed(robots, "BarBot", "http://foo.bar/w/a")
    assert not allowed(robots, "BarBot", "http://foo.bar/z/d")
    assert allowed(robots, "BazBot", "http://foo.bar/z/d")
    for agent in ("FooBot", "BarBot", "BazBot"):
        assert not allowed(robots, agent, "http://foo.bar/foo/bar/")


def test_google_groups_other_rules_do_not_close_a_group() -> None:
    for middle in ("Sitemap: https://foo.bar/sitemap", "Invalid-Unknown-Line: unknown"):
        robots = f"User-agent: BarBot\n{middle}\nUser-agent: *\nDisallow: /\n"
        assert not allowed(robots, "FooBot", "http://foo.bar/")
        assert not allowed(robots, "BarBot", "http://foo.bar/")


@pytest.mark.parametrize(
    "robots",
    [
        "USER-AGENT: FooBot\nALLOW: /x/\nDISALLOW: /\n",
        "user-agent: FooBot\nallow: /x/\ndisallow: /\n",
        "uSeR-aGeNt: FooBot\nAlLoW: /x/\ndIsAlLoW: /\n",
    ],
)
def test_google_line_names_case_insensitive(robots: str) -> None:
    assert allowed(robots, "FooBot", "http://foo.bar/x/y")
    assert not allowed(robots, "FooBot", "http://foo.bar/a/b")


@pytest.mark.parametrize("written", ["FOO BAR", "foo bar", "FoO bAr"])
@pytest.mark.parametrize("agent", ["Foo", "foo"])
def test_google_user_agent_value_case_insensitive(written: str, agent: str) -> None:
    robots = f"User-Agent: {written}\nAllow: /x/\nDisallow: /\n"
    assert allowed(robots, agent, "http://foo.bar/x/y")
    assert not allowed(robots, agent, "http://foo.bar/a/b")


def test_google_accepts_user_agent_up_to_first_space() -> None:
    robots = "User-Agent: *\nDisallow: /\nUser-Agent: Foo Bar\nAllow: /x/\nDisallow: /\n"
    assert allowed(robots, "Foo", "http://foo.bar/x/y")


def test_google_global_groups_secondary() -> None:
    url = "http://foo.bar/x/y"
    assert allowed("", "FooBot", url)
    glob = "user-agent: *\nallow: /\nuser-agent: FooBot\ndisallow: /\n"
    assert not allowed(glob, "FooBot", url)
    assert allowed(glob, "BarBot", url)
    only = "user-agent: FooBot\nallow: /\nuser-agent: BarBot\ndisallow: /\nuser-agent: BazBot\ndisallow: /\n"
    assert allowed(only, "QuxBot", url)


def test_google_values_case_sensitive() -> None:
    assert not allowed("user-agent: FooBot\ndisallow: /x/\n", "FooBot", "http://foo.bar/x/y")
    assert allowed("user-agent: FooBot\ndisallow: /X/\n", "FooBot", "http://foo.bar/x/y")


def test_google_longest_match() -> None:
    url = "http://foo.bar/x/page.html"
    assert not allowed("user-agent: FooBot\ndisallow: /x/page.html\nallow: /x/\n", "FooBot", url)
    robots = "user-agent: FooBot\nallow: /x/page.html\ndisallow: /x/\n"
    assert allowed(robots, "FooBot", url)
    assert not allowed(robots, "FooBot", "http://foo.bar/x/")
    assert allowed("user-agent: FooBot\ndisallow: \nallow: \n", "FooBot", url)
    assert allowed("user-agent: FooBot\ndisallow: /\nallow: /\n", "FooBot", url)
    robots = "user-agent: FooBot\ndisallow: /x\nallow: /x/\n"
    assert not allowed(robots, "FooBot", "http://foo.bar/x")
    assert allowed(robots, "FooBot", "http://foo.bar/x/")
    assert allowed("user-agent: FooBot\ndisallow: /x/page.html\nallow: /x/page.html\n", "FooBot", url)
    robots = "user-agent: FooBot\nallow: /page\ndisallow: /*.html\n"
    assert not allowed(robots, "FooBot", "http://foo.bar/page.html")
    assert allowed(robots, "FooBot", "http://foo.bar/page")
    robots = "user-agent: FooBot\nallow: /x/page.\ndisallow: /*.html\n"
    assert allowed(robots, "FooBot", url)
    assert not allowed(robots, "FooBot", "http://foo.bar/x/y.html")
    robots = "User-agent: *\nDisallow: /x/\nUser-agent: FooBot\nDisallow: /y/\n"
    assert allowed(robots, "FooBot", "http://foo.bar/x/page")
    assert not allowed(robots, "FooBot", "http://foo.bar/y/page")


def test_google_encoding() -> None:
    robots = "User-agent: FooBot\nDisallow: /\nAllow: /foo/bar?qux=taz&baz=http://foo.bar?tar&par\n"
    assert allowed(robots, "FooBot", "http://foo.bar/foo/bar?qux=taz&baz=http://foo.bar?tar&par")
    robots = "User-agent: FooBot\nDisallow: /\nAllow: /foo/bar/%E3%83%84\n"
    assert allowed(robots, "FooBot", "http://foo.bar/foo/bar/%E3%83%84")
    assert allowed(robots, "FooBot", "http://foo.bar/foo/bar/ツ")  # Google: false; RFC 9309: same path
    robots = "User-agent: FooBot\nDisallow: /\nAllow: /foo/bar/%62%61%7A\n"
    assert allowed(robots, "FooBot", "http://foo.bar/foo/bar/%62%61%7A")
    assert allowed(robots, "FooBot", "http://foo.bar/foo/bar/baz")  # Google: false; RFC 9309 row 5: true


def test_google_special_characters() -> None:
    robots = "User-agent: FooBot\nDisallow: /foo/bar/quz\nAllow: /foo/*/qux\n"
    assert not allowed(robots, "FooBot", "http://foo.bar/foo/bar/quz")
    assert allowed(robots, "FooBot", "http://foo.bar/foo/quz")
    assert allowed(robots, "FooBot", "http://foo.bar/foo//quz")
    assert allowed(robots, "FooBot", "http://foo.bar/foo/bax/quz")
    robots = "User-agent: FooBot\nDisallow: /foo/bar$\nAllow: /foo/bar/qux\n"
    assert not allowed(robots, "FooBot", "http://foo.bar/foo/bar")
    assert allowed(robots, "FooBot", "http://foo.bar/foo/bar/qux")
    assert allowed(robots, "FooBot", "http://foo.bar/foo/bar/")
    assert allowed(robots, "FooBot", "http://foo.bar/foo/bar/baz")
    robots = "User-agent: FooBot\n# Disallow: /\nDisallow: /foo/quz#qux\nAllow: /\n"
    assert allowed(robots, "FooBot", "http://foo.bar/foo/bar")
    assert not allowed(robots, "FooBot", "http://foo.bar/foo/quz")


DOC_CASES = {
    "/fish": (
        [
            "/fish",
            "/fish.html",
            "/fish/salmon.html",
            "/fishheads",
            "/fishheads/yummy.html",
            "/fish.html?id=anything",
        ],
        ["/bar", "/Fish.asp", "/catfish", "/?id=fish"],
    ),
    "/fish*": (
        [
            "/fish",
            "/fish.html",
            "/fish/salmon.html",
            "/fishheads",
            "/fishheads/yummy.html",
            "/fish.html?id=anything",
        ],
        ["/bar", "/Fish.bar", "/catfish", "/?id=fish"],
    ),
    "/fish/": (
        ["/fish/", "/fish/salmon", "/fish/?salmon", "/fish/salmon.html", "/fish/?id=anything"],
        ["/bar", "/fish", "/fish.html", "/Fish/Salmon.html"],
    ),
    "/*.php": (
        [
            "/filename.php",
            "/folder/filename.php",
            "/folder/filename.php?parameters",
            "//folder/any.php.file.html",
            "/filename.php/",
            "/index?f=filename.php/",
        ],
        ["/bar", "/php/", "/index?php", "/windows.PHP"],
    ),
    "/*.php$": (
        ["/filename.php", "/folder/filename.php"],
        [
            "/bar",
            "/filename.php?parameters",
            "/filename.php/",
            "/filename.php5",
            "/php/",
            "/filename?php",
            "/aaaphpaaa",
            "//windows.PHP",
        ],
    ),
    "/fish*.php": (["/fish.php", "/fishheads/catfish.php?parameters"], ["/bar", "/Fish.PHP"]),
}


@pytest.mark.parametrize("pattern", sorted(DOC_CASES))
def test_google_documentation_checks(pattern: str) -> None:
    robots = f"user-agent: FooBot\ndisallow: /\nallow: {pattern}\n"
    yes, no = DOC_CASES[pattern]
    for path in yes:
        assert allowed(robots, "FooBot", "http://foo.bar" + path), path
    for path in no:
        assert not allowed(robots, "FooBot", "http://foo.bar" + path), path


def test_google_order_of_precedence() -> None:
    assert allowed("user-agent: FooBot\nallow: /p\ndisallow: /\n", "FooBot", "http://example.com/page")
    assert allowed(
        "user-agent: FooBot\nallow: /folder\ndisallow: /folder\n", "FooBot", "http://example.com/folder/page"
    )
    assert not allowed(
        "user-agent: FooBot\nallow: /page\ndisallow: /*.htm\n", "FooBot", "http://example.com/page.htm"
    )
    robots = "user-agent: FooBot\nallow: /$\ndisallow: /\n"
    assert allowed(robots, "FooBot", "http://example.com/")
    assert not allowed(robots, "FooBot", "http://example.com/page.html")


@pytest.mark.parametrize("eol", ["\n", "\r\n", "\r"])
def test_google_line_endings(eol: str) -> None:
    robots = eol.join(["User-Agent: foo", "Allow: /some/path", "User-Agent: bar", "", "", "Disallow: /"])
    assert allowed(robots, "foo", "/some/path")
    assert not allowed(robots, "bar", "/some/path")
    assert allowed(robots, "baz", "/some/path")
    mixed = "User-Agent: foo\nAllow: /some/path\r\nUser-Agent: bar\n\r\n\nDisallow: /"
    assert not allowed(mixed, "bar", "/x")


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("", "/"),
        ("http://www.example.com", "/"),
        ("http://www.example.com/", "/"),
        ("http://www.example.com/a", "/a"),
        ("http://www.example.com/a/", "/a/"),
        ("http://www.example.com/a/b?c=http://d.e/", "/a/b?c=http://d.e/"),
        ("http://www.example.com/a/b?c=d&e=f#fragment", "/a/b?c=d&e=f"),
        ("example.com", "/"),
        ("example.com/", "/"),
        ("example.com/a", "/a"),
        ("example.com/a/", "/a/"),
        ("example.com/a/b?c=d&e=f#fragment", "/a/b?c=d&e=f"),
        ("a", "/"),
        ("a/", "/"),
        ("/a", "/a"),
        ("a/b", "/b"),
        ("example.com?a", "/?a"),
        ("example.com/a;b#c", "/a;b"),
        ("//a/b/c", "/b/c"),
    ],
)
def test_google_path_params_query(url: str, path: str) -> None:
    assert _path_of(url) == path


def test_hostile_pattern_is_matched_quickly() -> None:
    robots = Robots.parse("User-agent: *\nDisallow: /" + "*a" * 200 + "b\n", status=200)
    assert robots.allowed("/" + "a" * 5000, "bot")
