"""The URL allow-list (domain/allowlist.py), and the service's use of it: a guard naming
a URL outside the list is Invalid (URLNotAllowed) before any Secret is read or any
Prometheus client exists."""

from __future__ import annotations

from typing import Any

import pytest

from fakes import FakeEvents
from releaseguard.domain.allowlist import DEFAULT_PATTERNS, AllowList, parse_patterns, url_problem
from releaseguard.domain.models import Phase
from releaseguard.service import GuardRef, GuardService, parse_status

OWN = "http://prometheus.monitoring.svc:9090"
ALLOWED = AllowList.of([r"^https://prom\.example\.com(/|:|$)"], [OWN])

HOSTILE = [
    # user information: the host is after the @
    "http://prometheus.monitoring.svc:9090@evil.example",
    "http://prom@evil.example",
    "https://prom.example.com@evil.example",
    "https://prom.example.com:443@evil.example/",
    "https://user:pass@prom.example.com",
    # other schemes
    "file:///etc/passwd",
    "file://prom.example.com/etc/passwd",
    "gopher://prom.example.com:70/",
    "ftp://prom.example.com",
    "HTTPS://prom.example.com",
    "//prom.example.com",
    "prom.example.com",
    "javascript:alert(1)",
    # IDN and look-alike hosts
    "https://prom.ex\u0430mple.com",  # Cyrillic a
    "https://prom\u3002example\u3002com",  # ideographic full stops
    "https://\uff50rom.example.com",  # fullwidth p
    "https://prom.example.com\u200b",  # zero-width space
    "https://PROM.example.com",
    "https://prom.example.com.",  # trailing dot: another name to a regex
    "https://prom.example.com.evil.example",
    "https://prom.example.comevil.example",
    "http://prometheus.monitoring.svc:9090.evil.example",
    "http://prometheus.monitoring.svc:90901",
    # numeric hosts that resolvers read as addresses
    "http://2130706433/",
    "http://0x7f.1/",
    "http://127.1/",
    "http://0177.0.0.1/",
    "http://127.0.0.01/",
    # percent-encoding, backslashes, control characters, whitespace
    "https://prom%2eexample.com",
    "https://evil.example%2f@prom.example.com",
    "https://evil.example\\@prom.example.com",
    "https://prom.example.com\r\nHost: evil.example",
    "https://prom.example.com /",
    "https://prom.example.com\t",
    # query, fragment, path tricks
    "https://evil.example#@prom.example.com",
    "https://evil.example?@prom.example.com",
    "https://prom.example.com/../../evil",
    "https://prom.example.com/./x",
    # ports
    "https://prom.example.com:0",
    "https://prom.example.com:65536",
    "https://prom.example.com:08080",
    "https://prom.example.com:http",
    "https://[::1]x/",
    # simply elsewhere
    "http://evil.example",
    "http://169.254.169.254/latest/meta-data",
    "http://kubernetes.default.svc",
    "http://prom.example.com",  # right host, plain http
    "",
]


@pytest.mark.parametrize("url", HOSTILE)
def test_a_hostile_url_is_refused(url: str) -> None:
    problem = url_problem(url, ALLOWED)
    assert problem is not None, url


@pytest.mark.parametrize(
    "url",
    [
        OWN,
        OWN + "/",
        OWN + "/prefix/api",
        "https://prom.example.com",
        "https://prom.example.com:8443/sub/path",
        "https://prom.example.com/",
    ],
)
def test_an_allowed_url_passes(url: str) -> None:
    assert url_problem(url, ALLOWED) is None


def test_the_default_allows_tls_anywhere_and_plain_http_only_to_the_operators_own_url() -> None:
    default = AllowList.of(DEFAULT_PATTERNS, [OWN])
    assert url_problem("https://thanos.example.net", default) is None
    assert url_problem(OWN, default) is None
    assert url_problem("http://thanos.example.net", default) is not None
    assert url_problem("https://x@thanos.example.net", default) is not None


def test_an_addresses_and_ipv6_hosts_are_judged_by_the_regexes() -> None:
    allowed = AllowList.of([r"^http://127\.0\.0\.1:9090(/|$)", r"^http://\[::1\]:9090(/|$)"])
    assert url_problem("http://127.0.0.1:9090", allowed) is None
    assert url_problem("http://[::1]:9090/", allowed) is None
    assert url_problem("http://127.0.0.1:9091", allowed) is not None


def test_the_message_says_what_to_do() -> None:
    problem = url_problem("http://evil.example", ALLOWED)
    assert problem is not None and "--allowed-url" in problem and "evil.example" in problem
    problem = url_problem("http://prom@evil.example", ALLOWED)
    assert problem is not None and "user information" in problem


def test_an_empty_environment_value_allows_only_the_operators_own_urls() -> None:
    assert parse_patterns(None) is None
    assert parse_patterns("") == []
    assert parse_patterns(" ^https://a\n^https://b ") == ["^https://a", "^https://b"]
    only_own = AllowList.of(parse_patterns("") or [], [OWN])
    assert url_problem(OWN, only_own) is None
    assert url_problem("https://prom.example.com", only_own) is not None


# ---------------------------------------------------------------- through the service


class FakeKube:
    api: Any = None

    def __init__(self) -> None:
        self.secrets_read: list[str] = []
        self.status_patches: list[dict[str, Any]] = []

    def read(self, ns: str, kind: str, name: str) -> Any:
        if kind == "Secret":
            self.secrets_read.append(name)
            return {"metadata": {"name": name}, "data": {"token": "dG9rZW4="}}  # no label
        assert kind == "Deployment", kind
        return {"metadata": {"name": name, "namespace": ns}, "spec": {"template": {}}}

    def replica_sets(self, ns: str, deployment: Any) -> list[Any]:
        return []

    def patch_status(self, ns: str, name: str, patch: dict[str, Any]) -> None:
        self.status_patches.append(patch)


class FakeTargets:
    """The watch-fed copies, always holding the target (so nothing else is asked)."""

    def lookup(self, ns: str, name: str) -> Any:
        return {"metadata": {"name": name, "namespace": ns}}, []


class FakePool:
    def __init__(self) -> None:
        self.built: list[str] = []

    def get(self, url: str, timeout: float, token: str | None) -> Any:
        self.built.append(url)
        raise AssertionError(f"a Prometheus client was built for {url}")


def tick(spec_prometheus: dict[str, Any]) -> tuple[Any, FakeKube, FakePool]:
    kube, pool = FakeKube(), FakePool()
    service = GuardService(
        kube,  # type: ignore[arg-type]
        pool,  # type: ignore[arg-type]
        OWN,
        targets=FakeTargets(),  # type: ignore[arg-type]
        allowed_urls=ALLOWED,
        events=FakeEvents(),  # type: ignore[arg-type]
    )
    spec = {
        "target": {"deployment": "app"},
        "prometheus": spec_prometheus,
        "metrics": [{"name": "m", "query": "up", "max": 1}],
    }
    result = service.tick(GuardRef("ns", "g", "uid", 1), spec, {}, parse_status(None), None)
    return result.status, kube, pool


@pytest.mark.parametrize("url", [u for u in HOSTILE if u])
def test_a_guard_naming_a_hostile_url_is_invalid_and_nothing_is_read_or_sent(url: str) -> None:
    ref = {"name": "prom-token", "key": "token"}
    status, kube, pool = tick({"url": url, "bearerTokenSecretRef": ref})
    assert status.phase is Phase.INVALID
    assert status.conditions[0].reason == "URLNotAllowed", status.message
    assert kube.secrets_read == [] and pool.built == []


def test_an_unlabelled_secret_makes_the_guard_invalid_and_no_client_is_built() -> None:
    ref = {"name": "prom-token", "key": "token"}
    status, kube, pool = tick({"url": "https://prom.example.com", "bearerTokenSecretRef": ref})
    assert status.phase is Phase.INVALID
    assert status.conditions[0].reason == "SecretNotLabelled"
    assert "prom-token" in (status.message or "")
    assert kube.secrets_read == ["prom-token"] and pool.built == []


# ---------------------------------------------------------------- the command line


def test_flags_win_over_the_environment_and_an_unset_environment_gives_the_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from releaseguard.cli import ENV_ALLOWED, _allowed_urls

    monkeypatch.delenv(ENV_ALLOWED, raising=False)
    default = _allowed_urls(None, OWN)
    assert [p.pattern for p in default.patterns] == list(DEFAULT_PATTERNS)
    assert default.own_urls == (OWN,)

    monkeypatch.setenv(ENV_ALLOWED, "")
    assert _allowed_urls(None, OWN).patterns == ()  # set and empty: only the own URL

    monkeypatch.setenv(ENV_ALLOWED, r"^https://a\.example(/|$) ^https://b\.example(/|$)")
    assert len(_allowed_urls(None, OWN).patterns) == 2
    flags = _allowed_urls([r"^https://c\.example(/|$)"], OWN)
    assert [p.pattern for p in flags.patterns] == [r"^https://c\.example(/|$)"]


def test_a_bad_regex_stops_the_operator_at_start_with_a_message(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from releaseguard.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["run", "--prometheus-url", OWN, "--allowed-url", "^https://(unclosed"])
    assert exit_.value.code == 2
    assert "bad regex '^https://(unclosed'" in capsys.readouterr().err
