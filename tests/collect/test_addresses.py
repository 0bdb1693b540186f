"""The SSRF policy: every spelling of a host decoded to the address a socket would dial, every
non-public class refused with its name, the allow-list opening only what it names."""

from __future__ import annotations

import ipaddress

import pytest

from sophia.collect.addresses import AddressPolicy, AddressRefused, URLRefused, classify, parse_host
from sophia.errors import ConfigError, InvalidRequest

SPELLINGS = [
    ("127.0.0.1", "127.0.0.1"),
    ("2130706433", "127.0.0.1"),  # one decimal integer
    ("0177.0.0.1", "127.0.0.1"),  # octal parts
    ("017700000001", "127.0.0.1"),  # one octal integer
    ("0x7f.0x0.0x0.0x1", "127.0.0.1"),  # hex parts
    ("0X7F.0.0.1", "127.0.0.1"),
    ("0x7f000001", "127.0.0.1"),  # one hex integer
    ("127.1", "127.0.0.1"),  # short forms: the last part fills the remaining bytes
    ("127.0.1", "127.0.0.1"),
    ("10.1.1", "10.1.0.1"),
    ("0x7f.1", "127.0.0.1"),  # mixed
    ("0251.254.0xa9.254", "169.254.169.254"),
    ("0251.00376.000251.0000376", "169.254.169.254"),  # zero padding
    ("0xa9.0376.43518", "169.254.169.254"),
    ("0", "0.0.0.0"),
    ("0x", "0.0.0.0"),
    ("127.0.0.1.", "127.0.0.1"),  # trailing dot
    ("%31%32%37.0.0.1", "127.0.0.1"),  # percent-encoded, decoded as the URL standard does
    ("①②⑦.⓪.⓪.①", "127.0.0.1"),  # enclosed alphanumerics (NFKC)
    ("169。254。169。254", "169.254.169.254"),  # ideographic full stops
    ("169｡254｡169｡254", "169.254.169.254"),
    ("⓪ⓧⓐ⑨ⓕⓔⓐ⑨ⓕⓔ", "169.254.169.254"),
    ("[::1]", "::1"),
    ("[0000::1]", "::1"),
    ("[::ffff:127.0.0.1]", "::ffff:7f00:1"),  # IPv4-mapped, both notations
    ("[::ffff:7f00:1]", "::ffff:7f00:1"),
    ("[0:0:0:0:0:ffff:a9fe:a9fe]", "::ffff:a9fe:a9fe"),
    ("[fe80::1%25eth0]", "fe80::1"),  # a zone id, percent-encoded as in a URL
    ("[fe80::1%eth0]", "fe80::1"),
    ("::1", "::1"),  # unbracketed, as a resolver gives it
]


@pytest.mark.parametrize(("host", "address"), SPELLINGS)
def test_parse_host_decodes_every_ip_spelling(host: str, address: str) -> None:
    assert parse_host(host) == ipaddress.ip_address(address)


@pytest.mark.parametrize("host", ["example.com", "EXAMPLE.com.", "123.example.com", "0x.org", "1e100.net"])
def test_parse_host_leaves_names_to_the_resolver(host: str) -> None:
    assert parse_host(host) is None


@pytest.mark.parametrize(
    "host",
    [
        "0o177.0.0.1",
        "q177.0.0.1",
        "7147006462",
        "425.510.425.510",
        "0x41414141a9fea9fe",
        "1.2.3.4.5",
        "08.0.0.1",
    ],
)
def test_a_host_ending_in_a_number_must_be_a_valid_ipv4_address(host: str) -> None:
    with pytest.raises(AddressRefused, match="ends in a number but is not a valid IPv4 address"):
        parse_host(host)


@pytest.mark.parametrize("host", ["[127.0.0.1]", "[::1", "[v1.fe]", "[::ffff:1.2.3.4.5]", "[fe80::1%25a b]"])
def test_malformed_ipv6_literals_are_refused(host: str) -> None:
    with pytest.raises(URLRefused):
        parse_host(host)


CLASSES = [
    ("127.0.0.1", "loopback"),
    ("127.88.23.245", "loopback"),
    ("::1", "loopback"),
    ("10.0.0.1", "private (RFC 1918)"),
    ("172.16.5.4", "private (RFC 1918)"),
    ("192.168.1.1", "private (RFC 1918)"),
    ("fd12:3456::1", "private (unique local"),
    ("169.254.1.1", "link-local"),
    ("fe80::1", "link-local"),
    ("100.64.0.1", "CGNAT"),
    ("100.127.255.254", "CGNAT"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("ff02::1", "multicast"),
    ("0.0.0.0", "unspecified"),
    ("0.1.2.3", "unspecified"),
    ("::", "unspecified"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "broadcast"),
    ("192.0.2.1", "documentation"),
    ("198.51.100.7", "documentation"),
    ("203.0.113.9", "documentation"),
    ("2001:db8::1", "documentation"),
    ("198.18.0.1", "benchmarking"),
    ("192.0.0.8", "IETF protocol assignments"),
    ("::ffff:127.0.0.1", "IPv4-mapped IPv6 of 127.0.0.1 (loopback)"),
    ("::ffff:169.254.169.254", "IPv4-mapped IPv6 of 169.254.169.254 (link-local (cloud metadata))"),
    ("::ffff:93.184.215.14", "IPv4-mapped IPv6 of 93.184.215.14"),  # never a public site's AAAA
    ("::7f00:1", "IPv4-compatible IPv6 of 127.0.0.1"),
    ("::ffff:0:7f00:1", "IPv4-translated IPv6 of 127.0.0.1"),
    ("2002:7f00:1::1", "6to4 of 127.0.0.1 (loopback)"),
    ("2002:a9fe:a9fe::", "6to4 of 169.254.169.254"),
    ("2001:0:4136:e378:8000:63bf:80ff:fffe", "Teredo of 127.0.0.1 (loopback)"),
    ("64:ff9b::7f00:1", "NAT64 (64:ff9b::/96)"),
    ("64:ff9b::5db8:d70e", "NAT64 (64:ff9b::/96)"),
    ("64:ff9b:1::a00:1", "local-use NAT64"),
    ("169.254.169.254", "link-local (cloud metadata)"),
    ("192.0.0.192", "Oracle Cloud metadata"),  # ipaddress calls it global
    ("fd00:ec2::254", "AWS metadata endpoint (IPv6)"),
    ("100.100.100.200", "Alibaba Cloud metadata"),
    ("169.254.170.2", "AWS ECS credentials"),
    ("168.63.129.16", "Azure platform endpoint"),
    ("fec0::1", "site-local"),
    ("100::1", "discard-only"),
    ("4000::1", "outside global unicast"),
]


@pytest.mark.parametrize(("address", "label"), CLASSES)
def test_every_non_public_class_is_refused_by_name(address: str, label: str) -> None:
    ip = ipaddress.ip_address(address)
    reason = classify(ip)
    assert reason is not None
    assert label in reason
    with pytest.raises(AddressRefused) as refused:
        AddressPolicy().check(ip)
    assert refused.value.code == "address_refused"
    assert isinstance(refused.value, InvalidRequest)
    assert refused.value.message.startswith(f"{ip} is {reason}: refused")


def test_only_openable_classes_suggest_the_allow_list() -> None:
    with pytest.raises(AddressRefused, match=r"refused \(add the host to collect\.allow"):
        AddressPolicy().check("10.0.0.1")
    for never_by_name in ("169.254.169.254", "::ffff:169.254.169.254", "0.0.0.0", "fd00:ec2::254"):
        with pytest.raises(AddressRefused) as refused:
            AddressPolicy().check(never_by_name)
        assert "collect.allow" not in refused.value.message


def test_the_metadata_message_reads_as_documented() -> None:
    with pytest.raises(AddressRefused) as refused:
        AddressPolicy().check("169.254.169.254")
    assert str(refused.value) == "169.254.169.254 is link-local (cloud metadata): refused"


@pytest.mark.parametrize(
    "address",
    [
        "93.184.215.14",
        "1.1.1.1",
        "8.8.8.8",
        "151.101.1.69",
        "2606:4700:4700::1111",
        "2a00:1450:4001:82b::200e",
        "2002:5db8:d70e::1",
        "100.63.255.255",
        "100.128.0.1",
        "172.32.0.1",
        "192.0.1.1",
    ],
)
def test_public_addresses_pass(address: str) -> None:
    assert classify(ipaddress.ip_address(address)) is None
    AddressPolicy().check(address)


def test_a_name_is_named_in_the_refusal() -> None:
    with pytest.raises(
        AddressRefused, match=r"^intranet\.example\.com resolves to 10\.0\.0\.5, which is private"
    ):
        AddressPolicy().check("10.0.0.5", host="intranet.example.com", port=80)


# -- the allow-list ------------------------------------------------------------------------------------


def test_an_allowed_network_opens_its_addresses_only() -> None:
    policy = AddressPolicy(["10.1.2.0/24"])
    policy.check("10.1.2.7", host="anything.example.com", port=80)
    with pytest.raises(AddressRefused):
        policy.check("10.1.3.7", host="anything.example.com", port=80)


def test_an_allowed_name_opens_its_internal_addresses_but_not_metadata() -> None:
    policy = AddressPolicy(["intranet.corp"])
    policy.check("10.0.0.5", host="intranet.corp", port=443)
    policy.check("::1", host="intranet.corp", port=443)
    with pytest.raises(AddressRefused, match="cloud metadata"):
        policy.check("169.254.169.254", host="intranet.corp", port=443)  # a DNS change must not leak keys
    with pytest.raises(AddressRefused, match="unspecified"):
        policy.check("0.0.0.0", host="intranet.corp", port=443)
    with pytest.raises(AddressRefused):
        policy.check("10.0.0.5", host="other.corp", port=443)
    with pytest.raises(AddressRefused):
        policy.check("10.0.0.5")  # an address reached by no allowed name


def test_a_metadata_address_opens_only_when_named() -> None:
    AddressPolicy(["169.254.169.254"]).check("169.254.169.254", host="metadata.google.internal")


def test_an_entry_with_a_port_opens_that_port_only() -> None:
    policy = AddressPolicy(["127.0.0.1:8080", "[::1]:8080", "wiki.intranet:8443"])
    policy.check("127.0.0.1", port=8080)
    policy.check("::1", port=8080)
    policy.check("10.9.9.9", host="wiki.intranet", port=8443)
    for ip, host, port in (("127.0.0.1", None, 80), ("::1", None, 8081), ("10.9.9.9", "wiki.intranet", 443)):
        with pytest.raises(AddressRefused):
            policy.check(ip, host=host, port=port)
    assert policy.check_url("http://127.0.0.1:8080/x").host == "127.0.0.1"
    with pytest.raises(AddressRefused):
        policy.check_url("http://127.0.0.1/x")


def test_wildcard_entries_open_subdomains() -> None:
    policy = AddressPolicy(["*.corp.example", "0x7f.1"])  # IP entries are read like URL hosts
    policy.check("10.0.0.1", host="git.corp.example")
    policy.check("127.0.0.1")
    with pytest.raises(AddressRefused):
        policy.check("10.0.0.1", host="corp.example")
    with pytest.raises(AddressRefused):
        policy.check("10.0.0.1", host="evilcorp.example")


def test_special_names_need_the_allow_list() -> None:
    assert AddressPolicy(["intranet"]).check_url("http://intranet/").host == "intranet"
    assert AddressPolicy(["*.internal"]).check_url("http://wiki.internal/").host == "wiki.internal"
    assert AddressPolicy(["localhost:8080"]).check_url("http://LOCALHOST.:8080/").host == "localhost"


@pytest.mark.parametrize("entry", ["not a host", "10.0.0.0/33", "host:99999", "[::1", "host:port"])
def test_a_bad_allow_entry_is_a_config_error(entry: str) -> None:
    with pytest.raises(ConfigError, match=r"collect\.allow entry"):
        AddressPolicy([entry])


# -- URLs ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("gopher://127.0.0.1:6379/_INFO", "scheme 'gopher' is refused"),
        ("file:///etc/passwd", "scheme 'file' is refused"),
        ("ftp://example.com/", "scheme 'ftp' is refused"),
        ("jar:http://127.0.0.1!/", "scheme 'jar' is refused"),
        ("//example.com/", "a URL without a scheme is refused"),
        ("localhost:+11211aaa", "scheme 'localhost' is refused"),
        ("http://evil@127.0.0.1", "carries credentials"),
        ("http://example.com@127.0.0.1/", "carries credentials"),
        ("http://127.0.0.1:80@example.com/", "carries credentials"),
        ("http://google.com:80+&@127.88.23.245:22/#+@google.com:80/", "carries credentials"),
        ("http:///path", "has no host"),
        ("http://example.com:0/", "outside 1-65535"),
        ("http://example.com:65536/", "outside 1-65535"),
        ("http://example.com:+80/", "is not a number"),
        ("http://example.com:８０/", "is not a number"),  # noqa: RUF001 (fullwidth digits, on purpose)
        ("http://0000::1:80/", "IPv6 address without brackets"),
        ("http://exa mple.com/", "holds characters a host name cannot"),
        ("http://example.com\\@127.0.0.1/", "carries credentials"),
        ("http://example.com\\.127.0.0.1/", "backslash"),
        ("http://exam\nple.com/", "control character"),
        ("http://a..b.com/", "empty or over-long label"),
        ("http://[::1]x/", "text after the IPv6 address"),
    ],
)
def test_check_url_refuses_with_a_clear_message(url: str, message: str) -> None:
    with pytest.raises(URLRefused, match=message.replace("(", r"\(").replace("+", r"\+")):
        AddressPolicy().check_url(url)


@pytest.mark.parametrize(
    ("url", "label"),
    [
        ("http://127.0.0.1/", "loopback"),
        ("http://2130706433/", "loopback"),
        ("http://0177.0.0.1/", "loopback"),
        ("http://0x7f.0x0.0x0.0x1/", "loopback"),
        ("http://127.1/", "loopback"),
        ("HTTPS://[::1]:8443/", "loopback"),
        ("http://[::ffff:127.0.0.1]/", "IPv4-mapped"),
        ("http://[::ffff:a9fe:a9fe]/", "IPv4-mapped"),
        ("http://[64:ff9b::a9fe:a9fe]/", "NAT64"),
        ("http://169.254.169.254/latest/meta-data/", "cloud metadata"),
        ("http://192.0.0.192/latest/", "Oracle"),
        ("http://[fd00:ec2::254]/latest/meta-data/", "AWS metadata"),
        ("http://100.100.100.200/latest/meta-data/", "Alibaba"),
        ("http://[::]:80/", "unspecified"),
        ("http://0/", "unspecified"),
        ("http://localhost/", "special-use domain .localhost"),
        ("http://app.localhost/", "special-use domain .localhost"),
        ("http://metadata.google.internal/computeMetadata/v1/", "special-use domain .internal"),
        ("http://printer.local/", "special-use domain .local"),
        ("http://router.home.arpa/", "special-use domain .home.arpa"),
        ("http://metadata/computeMetadata/v1/", "single-label name"),
        ("http://instance-data/latest/meta-data/", "single-label name"),
        ("http://test???test.com", "single-label name"),
    ],
)
def test_check_url_refuses_internal_hosts_without_resolving(url: str, label: str) -> None:
    with pytest.raises(AddressRefused, match=label.replace(".", r"\.")):
        AddressPolicy().check_url(url)


def test_check_url_normalises_what_it_admits() -> None:
    target = AddressPolicy().check_url("  HTTPS://Bücher.Example.:443/a%20b?q=1&r=@x#frag  ")
    assert (target.scheme, target.host, target.port, target.ip) == (
        "https",
        "xn--bcher-kva.example",
        443,
        None,
    )
    assert target.target == "/a%20b?q=1&r=@x"
    assert target.url == "https://xn--bcher-kva.example/a%20b?q=1&r=@x"
    literal = AddressPolicy().check_url("http://[2606:4700:4700::1111]:8080")
    assert literal.url == "http://[2606:4700:4700::1111]:8080/"
    assert literal.ip == ipaddress.ip_address("2606:4700:4700::1111")
    assert AddressPolicy().check_url("http://ⓔⓧⓐⓜⓟⓛⓔ.ⓒⓞⓜ/").host == "example.com"
