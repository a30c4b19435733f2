from __future__ import annotations

import pytest

from shortener.errors import InvalidURLError
from shortener.urls import (
    MAX_URL_LENGTH,
    build_location,
    is_safe_redirect_target,
    normalise_host,
    validate_destination,
)

OWN_HOSTS = frozenset({"go.example.com", "localhost:5000", "gö.example", "[::1]:8080"})

UTM = {"utm_source": "poster", "utm_medium": "print", "utm_campaign": "spring"}


def _reason(url: object, own_hosts: frozenset[str] = OWN_HOSTS) -> str:
    with pytest.raises(InvalidURLError) as raised:
        validate_destination(url, own_hosts=own_hosts)  # type: ignore[arg-type]
    assert raised.value.field == "url"
    assert raised.value.code == "invalid_url"
    return raised.value.message


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com",
        "https://example.com/",
        "http://example.com/page",
        "https://example.com/a/b?utm_source=x&q=1#section-2",
        "https://example.com/search?q=a%20b&q=c+d&empty=&flag",
        "https://example.com/path;params?x=1",
        "https://example.com:8443/x",
        "http://intranet.test:8000/x",
        "https://sub.go.example.com/x",
        "https://go.example.com.evil.test/x",
        "https://example.com/x#go.example.com",
        "https://example.com/?next=https://go.example.com/",
        "https://example.com/a%2Fb",
        "https://exa_mple.com/",
        "https://example.com?",
        "https://example.com/#",
        "http://192.168.1.10:8080/status",
        "http://[2001:db8::1]/",
        "https://example.com/%E2%82%AC",
        "https://xn--bcher-kva.example/",
        "https://example.com/" + "a" * (MAX_URL_LENGTH - len("https://example.com/")),
    ],
)
def test_ordinary_ascii_url_is_returned_unchanged(url: str) -> None:
    assert validate_destination(url, own_hosts=OWN_HOSTS) == url


@pytest.mark.parametrize(
    ("url", "normalised"),
    [
        ("HTTPS://Example.COM/Path?Q=A#F", "https://example.com/Path?Q=A#F"),
        ("https://example.com./x", "https://example.com/x"),
        ("https://example.com:0443/x", "https://example.com:443/x"),
        ("https://example.com/caf\u00e9", "https://example.com/caf%C3%A9"),
        ("https://example.com/stra\u00dfe?q=\u00fc#\u00e4", "https://example.com/stra%C3%9Fe?q=%C3%BC#%C3%A4"),
        ("https://example.com/\u65e5\u672c", "https://example.com/%E6%97%A5%E6%9C%AC"),
        ("https://b\u00fccher.example/", "https://xn--bcher-kva.example/"),
        ("https://B\u00dcCHER.example/x", "https://xn--bcher-kva.example/x"),
        ("https://\u4f8b\u3048.\u30c6\u30b9\u30c8/", "https://xn--r8jz45g.xn--zckzah/"),
        ("https://ex%61mple.com/", "https://example.com/"),
        ("http://[2001:DB8:0:0::1]:8080/", "http://[2001:db8::1]:8080/"),
        ("http://0x7f.1/", "http://127.0.0.1/"),
        ("http://2130706433/", "http://127.0.0.1/"),
    ],
)  # fmt: skip
def test_url_is_normalised_as_a_browser_reads_it(url: str, normalised: str) -> None:
    assert validate_destination(url, own_hosts=OWN_HOSTS) == normalised


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        # Not a string, or empty.
        (None, "non-empty string"),
        (b"https://example.com/", "non-empty string"),
        ("", "non-empty string"),
        # Too long.
        ("https://example.com/" + "a" * MAX_URL_LENGTH, "at most 2,048"),
        ("https://example.com/" + "\u00e9" * 700, "once encoded"),
        # Control characters.
        ("https://example.com/\x00", "control characters"),
        ("https://exa\x00mple.com/", "control characters"),
        ("https://example.com/\x1b[31m", "control characters"),
        ("https://example.com/\x7f", "control characters"),
        ("https://example.com/\x85", "control characters"),
        ("https://example.com/a\rb", "control characters"),
        ("https://example.com/a\nb", "control characters"),
        ("java\tscript:alert(1)", "control characters"),
        ("https://example.com/\t", "control characters"),
        # Whitespace anywhere.
        (" https://example.com/", "whitespace"),
        ("https://example.com/ ", "whitespace"),
        ("https://example.com/a b", "whitespace"),
        ("https://example.com/?q=a b", "whitespace"),
        ("https://example.com/\u00a0", "whitespace"),
        ("\u3000https://example.com/", "whitespace"),
        ("https://example.com/\u2028", "whitespace"),
        ("https://example.com/\u2003", "whitespace"),
        # Backslashes, which browsers read as slashes.
        ("https:\\\\example.com/", "backslash"),
        ("https://evil.test\\@go.example.com/", "backslash"),
        ("https://example.com/a\\b", "backslash"),
        ("/\\evil.test", "backslash"),
        # Lone surrogates cannot be encoded.
        ("https://example.com/\ud800", "valid text"),
        # Schemes other than http and https, relative and scheme-relative URLs.
        ("javascript:alert(1)", "absolute http"),
        ("JavaScript:alert(1)", "absolute http"),
        ("javascript://example.com/%0aalert(1)", "absolute http"),
        ("data:text/html,<script>alert(1)</script>", "absolute http"),
        ("file:///etc/passwd", "absolute http"),
        ("ftp://example.com/file", "absolute http"),
        ("mailto:someone@example.com", "absolute http"),
        ("ws://example.com/socket", "absolute http"),
        ("//example.com/x", "absolute http"),
        ("/relative/path", "absolute http"),
        ("relative/path", "absolute http"),
        ("example.com", "absolute http"),
        ("example.com/x", "absolute http"),
        ("localhost:5000/x", "absolute http"),
        ("?q=1", "absolute http"),
        ("#top", "absolute http"),
        # Missing host.
        ("http:/x", "has no host"),
        ("https:x", "has no host"),
        ("https:", "has no host"),
        ("https://", "has no host"),
        ("https:///example.com", "has no host"),
        ("https://?q=1", "has no host"),
        ("https://#x", "has no host"),
        ("https://:443/", "invalid host"),
        ("https://./", "invalid host"),
        # User information, which makes the host hard to read.
        ("https://bank.com@evil.test/", "user name or password"),
        ("https://user:pw@example.com/", "user name or password"),
        ("https://user@example.com/", "user name or password"),
        ("https://@example.com/", "user name or password"),
        ("https://bank.com:443@evil.test/", "user name or password"),
        # Invalid ports.
        ("https://example.com:/", "invalid port"),
        ("https://example.com:0/", "invalid port"),
        ("https://example.com:65536/", "invalid port"),
        ("https://example.com:99999999/", "invalid port"),
        ("https://example.com:-1/", "invalid port"),
        ("https://example.com:+443/", "invalid port"),
        ("https://example.com:http/", "invalid port"),
        ("https://example.com:443:443/", "invalid port"),
        ("https://example.com:\u0664\u0664\u0663/", "invalid port"),
        # Invalid hosts.
        ("https://exa mple.com/", "whitespace"),
        ("https://a..b/", "invalid host"),
        ("https://-.example.com%2F/", "invalid host"),
        ("https://" + "a" * 64 + ".com/", "invalid host"),
        ("https://" + ".".join(["a" * 60] * 5) + "/", "invalid host"),
        ("https://exa!mple.com/", "invalid host"),
        ("https://exa%mple.com/", "invalid host"),
        ("https://exa%zzmple.com/", "invalid host"),
        ("https://exa%25mple.com/", "invalid host"),
        ("https://bank.com%40evil.test/", "invalid host"),
        ("https://%C3.com/", "invalid host"),
        ("https://xn--zz.com/", "invalid host"),
        ("https://xn--abc-.com/", "invalid host"),
        ("https://example.com\uff0fevil.test/", "not a valid URL"),
        ("https://1.2.3.256/", "invalid host"),
        ("https://1.2.3.4.5/", "invalid host"),
        ("https://example.09/", "invalid host"),
        ("https://[::1/", "not a valid URL"),
        ("https://[zz]/", "not a valid URL"),
        ("https://[::1]x/", "invalid host"),
        ("https://[fe80::1%25eth0]/", "invalid host"),
    ],
)
def test_unsafe_or_malformed_destination_is_rejected(url: object, fragment: str) -> None:
    assert fragment in _reason(url)


@pytest.mark.parametrize(
    "url",
    [
        "https://go.example.com/x",
        "https://GO.Example.COM/x",
        "https://go.example.com./x",
        "https://GO.Example.COM./x",
        "https://go.example.com../x",
        "https://go.example.com:8443/x",
        "http://go.example.com:80/x",
        "https://go%2Eexample.com/x",
        "https://g%6F.example.com/x",
        "https://go\u3002example\u3002com/x",
        "https://\uff47\uff4f.example.com/x",
        "http://localhost/x",
        "http://LOCALHOST/x",
        "http://localhost:5000/x",
        "http://localhost.:9999/x",
        "https://g\u00f6.example/",
        "https://G\u00d6.EXAMPLE/",
        "https://xn--g-1ga.example/",
        "https://XN--G-1GA.example./",
        "http://[::1]/",
        "http://[0:0:0:0:0:0:0:1]:8080/",
    ],
)
def test_destination_on_one_of_our_own_hosts_is_rejected(url: str) -> None:
    assert "this link shortener itself" in _reason(url)


@pytest.mark.parametrize(
    ("own", "url"),
    [
        ("127.0.0.1:5000", "http://127.1/"),
        ("127.0.0.1", "http://0x7f000001/"),
        ("127.0.0.1", "http://2130706433:8000/"),
        ("127.0.0.1", "http://0177.0.0.1/"),
        ("xn--bcher-kva.example", "https://b\u00fccher.example/"),
        ("B\u00fccher.Example.", "https://xn--bcher-kva.example/"),
    ],
)
def test_own_host_matches_however_either_side_is_spelled(own: str, url: str) -> None:
    assert "this link shortener itself" in _reason(url, frozenset({own}))


def test_foreign_host_passes_when_there_are_no_own_hosts() -> None:
    assert validate_destination("https://go.example.com/", own_hosts=()) == (
        "https://go.example.com/"
    )


@pytest.mark.parametrize(
    ("host", "normalised"),
    [
        ("go.example.com", "go.example.com"),
        ("GO.Example.COM", "go.example.com"),
        ("go.example.com.", "go.example.com"),
        ("go.example.com:8443", "go.example.com"),
        ("GO.example.com.:443", "go.example.com"),
        ("go.example.com:", "go.example.com"),
        ("localhost:5000", "localhost"),
        ("g\u00f6.example", "xn--g-1ga.example"),
        ("G\u00d6.example", "xn--g-1ga.example"),
        ("xn--g-1ga.example", "xn--g-1ga.example"),
        ("XN--G-1GA.EXAMPLE", "xn--g-1ga.example"),
        ("[::1]", "[::1]"),
        ("[::1]:5000", "[::1]"),
        ("[0:0::0:1]:5000", "[::1]"),
        ("[2001:DB8::A]", "[2001:db8::a]"),
        ("127.0.0.1:5000", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
    ],
)
def test_normalise_host(host: str, normalised: str) -> None:
    assert normalise_host(host) == normalised


@pytest.mark.parametrize(
    "host",
    ["", ".", ":5000", "a..b", "exa mple.com", "go.example.com:http", "[::1", "[::1]x", "[zz]",
     "bank.com@evil.test", "xn--zz.com", "1.2.3.256"],
)  # fmt: skip
def test_normalise_host_rejects_what_no_browser_accepts(host: str) -> None:
    with pytest.raises(ValueError):
        normalise_host(host)


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/",
        "http://example.com",
        "HTTPS://example.com/x?y=1#z",
        "https://xn--bcher-kva.example/stra%C3%9Fe",
    ],
)
def test_safe_redirect_target_is_accepted(url: str) -> None:
    assert is_safe_redirect_target(url)


@pytest.mark.parametrize(
    "url",
    [
        "",
        "javascript:alert(1)",
        "data:text/html,x",
        "//example.com/",
        "/path",
        "https://",
        "https:///example.com",
        "http:/example.com",
        " https://example.com/",
        "https://example.com/\n",
        "https://example.com/\x00",
        "https://example.com/\u00a0",
        "https://example.com\\@evil.test/",
        "ftp://example.com/",
    ],
)
def test_unsafe_redirect_target_is_refused(url: str) -> None:
    assert not is_safe_redirect_target(url)


@pytest.mark.parametrize(
    ("destination", "forwarded", "utm", "location"),
    [
        # Nothing to add: the destination comes back as it is.
        ("https://example.com/p?a=1#f", [], None, "https://example.com/p?a=1#f"),
        ("https://example.com/p", [], {}, "https://example.com/p"),
        # The destination's query is kept byte for byte.
        (
            "https://example.com/p?a=%20b&c=d+e&flag",
            [("ref", "x")],
            None,
            "https://example.com/p?a=%20b&c=d+e&flag&ref=x",
        ),
        # Forwarded pairs are appended and encoded.
        (
            "https://example.com/p",
            [("ref", "a b&c"), ("ref", "é")],
            None,
            "https://example.com/p?ref=a+b%26c&ref=%C3%A9",
        ),
        # UTM parameters are appended after the forwarded pairs.
        (
            "https://example.com/p?a=1",
            [("ref", "x")],
            UTM,
            "https://example.com/p?a=1&ref=x&utm_source=poster&utm_medium=print&utm_campaign=spring",
        ),
        # A UTM parameter already in the destination is never overridden.
        (
            "https://example.com/p?utm_source=newsletter",
            [],
            UTM,
            "https://example.com/p?utm_source=newsletter&utm_medium=print&utm_campaign=spring",
        ),
        (
            "https://example.com/p?utm%5Fsource=newsletter&utm_medium=",
            [],
            UTM,
            "https://example.com/p?utm%5Fsource=newsletter&utm_medium=&utm_campaign=spring",
        ),
        # ... nor one the visitor's own query string brought along.
        (
            "https://example.com/p",
            [("utm_campaign", "partner")],
            UTM,
            "https://example.com/p?utm_campaign=partner&utm_source=poster&utm_medium=print",
        ),
        # The fragment stays last.
        (
            "https://example.com/p?a=1#section",
            [("ref", "x")],
            {"utm_source": "poster"},
            "https://example.com/p?a=1&ref=x&utm_source=poster#section",
        ),
        (
            "https://example.com/p#a?b=c",
            [],
            {"utm_source": "poster"},
            "https://example.com/p?utm_source=poster#a?b=c",
        ),
        # Empty UTM values are skipped.
        (
            "https://example.com/p",
            [],
            {"utm_source": "poster", "utm_medium": "", "utm_campaign": ""},
            "https://example.com/p?utm_source=poster",
        ),
        (
            "https://example.com/p?a=1",
            [],
            {"utm_source": "", "utm_campaign": ""},
            "https://example.com/p?a=1",
        ),
        # An empty or '&'-terminated query gains no stray separator.
        ("https://example.com/p?", [("ref", "x")], None, "https://example.com/p?ref=x"),
        ("https://example.com/p?a=1&", [("ref", "x")], None, "https://example.com/p?a=1&ref=x"),
        ("https://example.com", [("ref", "x")], None, "https://example.com?ref=x"),
    ],
)
def test_build_location(
    destination: str,
    forwarded: list[tuple[str, str]],
    utm: dict[str, str] | None,
    location: str,
) -> None:
    assert build_location(destination, forwarded, utm) == location
