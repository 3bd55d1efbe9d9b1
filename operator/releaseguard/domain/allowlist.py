"""Which URLs a guard may make the operator contact: the URL allow-list.

The operator runs inside the cluster with its own network position, so a URL in a guard
is a request the guard's author makes *through* the operator (server-side request
forgery), and with spec.prometheus.bearerTokenSecretRef it also carries a token. Every
URL a guard names (Prometheus today; Alertmanager and webhooks when they come) goes
through `url_problem` before any request is sent.

Strict on purpose: a URL is judged as written, and only a plain, canonical
`http(s)://host[:port][/path]` can pass, so that an allow-list regex sees the same host
the HTTP client will connect to. Pure: no I/O, no DNS.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# The default when the operator is started without --allowed-url (and without
# RELEASEGUARD_ALLOWED_URLS): TLS endpoints, besides the operator's own URLs.
DEFAULT_PATTERNS: tuple[str, ...] = ("^https://",)

_SCHEMES = ("http", "https")
# A DNS name: lower-case LDH labels, none starting or ending with "-", and a last label
# that is not all digits (so "2130706433", "127.1" and "0x7f.1", which resolvers read as
# numeric addresses, are not names).
_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_NAME = re.compile(rf"^(?:{_LABEL}\.)*(?=[a-z0-9-]*[a-z-])(?:{_LABEL})$")
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = re.compile(rf"^{_OCTET}(?:\.{_OCTET}){{3}}$")
_IPV6 = re.compile(r"^\[[0-9a-f:.]+\]$")
_PATH = re.compile(r"^(?:/[A-Za-z0-9._~!$&'()*+,;=:@%-]*)*$")


@dataclass(frozen=True)
class AllowList:
    """Regexes (Python `re`, searched, so anchor them: `^https://prom\\.example(/|:|$)`)
    and the exact base URLs the operator was configured with itself."""

    patterns: tuple[re.Pattern[str], ...]
    own_urls: tuple[str, ...] = ()

    @classmethod
    def of(cls, patterns: Iterable[str], own_urls: Iterable[str | None] = ()) -> AllowList:
        """Compile `patterns` (re.error on a bad one) and allow each of `own_urls`
        (the operator's --prometheus-url, later its Alertmanager URL) and its paths."""
        own = tuple(u.rstrip("/") for u in own_urls if u)
        return cls(tuple(re.compile(p) for p in patterns), own)

    def describe(self) -> str:
        parts = [*self.own_urls, *(p.pattern for p in self.patterns)]
        return ", ".join(parts) if parts else "nothing"


def url_problem(url: str, allowed: AllowList) -> str | None:
    """Why the operator must not contact `url`, or None when it may."""
    problem = _malformed(url)
    if problem is not None:
        return f"URL {url!r} is refused: {problem}"
    base = url.rstrip("/")
    if any(base == own or base.startswith(own + "/") for own in allowed.own_urls):
        return None
    if any(p.search(url) for p in allowed.patterns):
        return None
    return (
        f"URL {url!r} is not in the operator's allow-list ({allowed.describe()}); "
        "ask the operator's admin to add it with --allowed-url"
    )


def _malformed(url: str) -> str | None:
    """Why `url` is not a plain canonical http(s) base URL, or None."""
    if not url.isascii() or not url.isprintable() or " " in url:
        return "only printable ASCII is allowed (write an IDN host in its xn-- form)"
    if "\\" in url:
        return "a backslash is not allowed"
    scheme, sep, rest = url.partition("://")
    if not sep:
        return "it must start with http:// or https://"
    if scheme not in _SCHEMES:
        return f"the scheme must be http or https, not {scheme!r}"
    if "?" in rest or "#" in rest:
        return "a query or fragment is not allowed"
    authority, slash, path = rest.partition("/")
    if "@" in authority:
        return "user information (user@ or user:password@) is not allowed"
    if "%" in authority:
        return "a percent-encoded host is not allowed"
    host, port = _split_port(authority)
    if port is not None and not (port.isdigit() and port[0] != "0" and 0 < int(port) < 65536):
        return f"the port {port!r} is not a number from 1 to 65535"
    if not (_NAME.match(host) or _IPV4.match(host) or _IPV6.match(host)):
        return (
            f"the host {host!r} is not a lower-case DNS name, a dotted IPv4 address or a "
            "bracketed IPv6 address"
        )
    if slash and not _PATH.match("/" + path):
        return "the path has characters that are not allowed"
    if any(seg in (".", "..") for seg in path.split("/")):
        return "the path must not contain . or .. segments"
    return None


def _split_port(authority: str) -> tuple[str, str | None]:
    if authority.startswith("["):
        end = authority.find("]")
        if end == -1:
            return authority, None
        host, rest = authority[: end + 1], authority[end + 1 :]
        return host, (rest[1:] if rest.startswith(":") else (rest or None))
    host, colon, port = authority.partition(":")
    return host, (port if colon else None)


def parse_patterns(text: str | None) -> Sequence[str] | None:
    """The patterns in RELEASEGUARD_ALLOWED_URLS (whitespace-separated: a URL holds no
    whitespace); None when it is unset, which is not the same as set and empty."""
    return None if text is None else text.split()
