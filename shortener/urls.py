"""Destination rules: which URLs a link may point at, and the Location a redirect sends."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Collection, Mapping, Sequence
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from shortener.errors import InvalidURLError

MAX_URL_LENGTH = 2048

_SCHEMES = frozenset({"http", "https"})
# C0 and C1 controls, DEL, unicode whitespace, backslash and lone surrogates. Browsers silently drop
# or reinterpret these, so a URL holding one does not go where it reads as going.
_UNSAFE_CHAR = re.compile(r"[\x00-\x1f\x7f-\x9f\\\ud800-\udfff]|\s")
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")
_PORT = re.compile(r"[0-9]{1,5}")
_LABEL = re.compile(r"[a-z0-9_-]{1,63}")
# Characters a browser refuses in a host once it has been percent-decoded.
_FORBIDDEN_HOST_CHAR = re.compile(r"[\x00-\x20#%/:<>?@\[\\\]^|\x7f]")
_IPV4_PART = {
    10: re.compile(r"[0-9]+"),
    8: re.compile(r"[0-7]+"),
    16: re.compile(r"[0-9a-f]+"),
}


def validate_destination(url: str, *, own_hosts: Collection[str]) -> str:
    """Return `url` as a browser would request it (ASCII), or raise InvalidURLError saying why not.

    The result has a lowercase scheme, the host in lowercase punycode without a trailing dot, and
    non-ASCII characters in the path, query and fragment percent-encoded as UTF-8; nothing is
    stripped. `own_hosts` are the shortener's own hosts (a port is ignored), which a destination
    may not point at; an own host that is itself invalid raises ValueError.
    """
    if not isinstance(url, str) or not url:
        raise InvalidURLError("url", "must be a non-empty string.")
    if len(url) > MAX_URL_LENGTH:
        raise InvalidURLError("url", f"must be at most {MAX_URL_LENGTH:,} characters long.")
    _reject_unsafe_chars(url)
    try:
        parts = urlsplit(url)
    except ValueError as error:
        raise InvalidURLError("url", f"is not a valid URL ({error}).") from error
    if parts.scheme not in _SCHEMES:
        raise InvalidURLError(
            "url", "must be an absolute http:// or https:// URL, like https://example.com/page."
        )
    if not parts.netloc:
        raise InvalidURLError("url", "has no host; write it like https://example.com/page.")
    if "@" in parts.netloc:
        raise InvalidURLError(
            "url", "must not contain a user name or password before the host (the '@' part)."
        )
    try:
        raw_host, port = _split_authority(parts.netloc)
    except ValueError as error:
        raise InvalidURLError("url", f"has an invalid host: {error}.") from error
    if port is not None and (not _PORT.fullmatch(port) or not 1 <= int(port) <= 65535):
        raise InvalidURLError("url", "has an invalid port; it must be a number from 1 to 65535.")
    try:
        host = _normalise_hostname(raw_host)
    except ValueError as error:
        raise InvalidURLError("url", f"has an invalid host: {error}.") from error
    if _reached(host) in {_reached(normalise_host(own)) for own in own_hosts}:
        raise InvalidURLError("url", "must not point at this link shortener itself.")

    # The rest is cut from the text as typed: urlunsplit would drop an empty '?' or '#'.
    rest = url[len(parts.scheme) + 3 + len(parts.netloc) :]
    rest = _NON_ASCII.sub(lambda match: quote(match.group(0), safe=""), rest)
    authority = host if port is None else f"{host}:{int(port)}"
    normalised = f"{parts.scheme}://{authority}{rest}"
    if len(normalised) > MAX_URL_LENGTH:
        raise InvalidURLError(
            "url", f"must be at most {MAX_URL_LENGTH:,} characters long once encoded."
        )
    return normalised


def normalise_host(host: str) -> str:
    """Return the comparable form of a host (port allowed): lowercase punycode, no dot, no port.

    Raises ValueError for a host no browser would accept.
    """
    name, port = _split_authority(host)
    if port is not None and not (port == "" or (port.isascii() and port.isdigit())):
        raise ValueError(f"the port {port!r} is not a number")
    return _normalise_hostname(name)


def split_authority(authority: str) -> tuple[str, str | None]:
    """Split `host[:port]` or `[v6][:port]`; the port is None when there is no colon."""
    return _split_authority(authority)


def is_safe_redirect_target(url: str) -> bool:
    """Tell whether `url` is still an absolute http(s) URL without characters browsers rewrite."""
    head = url[:8].lower()
    if head.startswith("https://"):
        start = 8
    elif head.startswith("http://"):
        start = 7
    else:
        return False
    return start < len(url) and url[start] not in "/?#" and not _UNSAFE_CHAR.search(url)


def build_location(
    destination: str,
    forwarded: Sequence[tuple[str, str]],
    utm: Mapping[str, str] | None,
) -> str:
    """Append `forwarded` pairs, then any `utm` parameter the URL lacks, to the destination's query.

    `utm` maps full parameter names (utm_source, ...) to values; empty values are skipped and a
    parameter already in the destination or in `forwarded` is never overridden. The destination's
    own query is kept byte for byte and its fragment stays last.
    """
    if not forwarded and not utm:
        return destination
    # A validated destination has no '#' or '?' before its fragment and query, so splitting on
    # them is exact and cheaper than a full parse.
    before_fragment, hash_mark, fragment = destination.partition("#")
    base, _, query = before_fragment.partition("?")
    extra = list(forwarded)
    if utm:
        present = {key for key, _ in parse_qsl(query, keep_blank_values=True)}
        present.update(key for key, _ in forwarded)
        extra.extend((key, value) for key, value in utm.items() if value and key not in present)
    if not extra:
        return destination
    appended = urlencode(extra)
    separator = "&" if query and not query.endswith("&") else ""
    query = f"{query}{separator}{appended}"
    return f"{base}?{query}{hash_mark}{fragment}"


def _reject_unsafe_chars(url: str) -> None:
    match = _UNSAFE_CHAR.search(url)
    if match is None:
        return
    char = match.group(0)
    where = f"U+{ord(char):04X} at position {match.start() + 1}"
    if char == "\\":
        problem = f"must not contain a backslash (found at position {match.start() + 1})"
    elif ord(char) < 0x20 or 0x7F <= ord(char) <= 0x9F:
        problem = f"must not contain control characters (found {where})"
    elif char.isspace():
        problem = f"must not contain spaces or other whitespace (found {where})"
    else:
        problem = f"must be valid text (found a lone surrogate {where})"
    raise InvalidURLError("url", f"{problem}.")


def _reached(host: str) -> str:
    """The host a browser connects to: `[::ffff:127.0.0.1]` (IPv4-mapped IPv6) is 127.0.0.1."""
    if host.startswith("["):
        mapped = ipaddress.IPv6Address(host[1:-1]).ipv4_mapped
        if mapped is not None:
            return str(mapped)
    return host


def _split_authority(authority: str) -> tuple[str, str | None]:
    """Split `host[:port]` or `[v6][:port]`; the port is None when there is no colon."""
    if authority.startswith("["):
        end = authority.find("]")
        if end == -1:
            raise ValueError("the IPv6 address has no closing ']'")
        host, rest = authority[: end + 1], authority[end + 1 :]
        if rest and not rest.startswith(":"):
            raise ValueError("there are characters between the IPv6 address and the port")
        return host, rest[1:] if rest else None
    host, colon, port = authority.partition(":")
    return host, port if colon else None


def _normalise_hostname(name: str) -> str:
    if name.startswith("["):
        literal = name[1:-1]
        # Zone identifiers only mean something on the machine that wrote them.
        if "%" in literal:
            raise ValueError("an IPv6 address may not carry a zone identifier")
        try:
            return f"[{ipaddress.IPv6Address(literal).compressed}]"
        except ValueError:
            raise ValueError(f"{literal!r} is not an IPv6 address") from None
    # Browsers percent-decode the host, so "go%2Eexample.com" is "go.example.com".
    try:
        decoded = unquote(name, errors="strict")
    except UnicodeDecodeError:
        raise ValueError("it percent-encodes bytes that are not UTF-8") from None
    if _FORBIDDEN_HOST_CHAR.search(decoded) or _UNSAFE_CHAR.search(decoded):
        raise ValueError("it contains a character not allowed in a host name")
    domain = decoded.lower().rstrip(".")
    if not domain:
        raise ValueError("it is empty")
    try:
        ascii_domain = domain.encode("idna").decode("ascii").lower()
        # Encoding passes "xn--" labels through untouched; decoding checks they are real punycode.
        ascii_domain.encode("ascii").decode("idna")
    except UnicodeError:
        raise ValueError(f"{domain!r} is not a valid domain name") from None
    labels = ascii_domain.split(".")
    if len(ascii_domain) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise ValueError(f"{domain!r} is not a valid domain name")
    address = _parse_ipv4(labels)
    return ascii_domain if address is None else address


def _parse_ipv4(labels: list[str]) -> str | None:
    """Read a host ending in a number as browsers do ("0x7f.1" is 127.0.0.1); None for a domain."""
    if not labels[-1].isdigit() and _ipv4_number(labels[-1]) is None:
        return None
    numbers = [_ipv4_number(label) for label in labels]
    if len(numbers) > 4 or None in numbers:
        raise ValueError(f"{'.'.join(labels)!r} is not a valid IPv4 address")
    *leading, last = [number for number in numbers if number is not None]
    if any(number > 255 for number in leading) or last >= 256 ** (4 - len(leading)):
        raise ValueError(f"{'.'.join(labels)!r} is not a valid IPv4 address")
    value = last + sum(number << (8 * (3 - index)) for index, number in enumerate(leading))
    return str(ipaddress.IPv4Address(value))


def _ipv4_number(label: str) -> int | None:
    radix = 10
    if label.startswith("0x"):
        radix, label = 16, label[2:]
    elif len(label) > 1 and label.startswith("0"):
        radix, label = 8, label[1:]
    if not label:
        return 0 if radix != 10 else None
    if not _IPV4_PART[radix].fullmatch(label):
        return None
    return int(label, radix)
