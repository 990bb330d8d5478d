"""The web settings: origins, limits and the server address come from BOT_* variables."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from bot.settings import Settings, setting_errors


def test_the_defaults_serve_on_loopback_with_no_other_site_allowed() -> None:
    settings = Settings()
    assert (settings.host, settings.port, settings.cors_origins) == ("127.0.0.1", 7860, [])


def test_origins_are_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOT_CORS_ORIGINS", "https://Gym.example, http://127.0.0.1:8000/")
    assert Settings().cors_origins == ["https://gym.example", "http://127.0.0.1:8000"]


@pytest.mark.parametrize("bad", ["gym.example", "https://gym.example/page", "ftp://gym.example", "http://gym:x"])
def test_something_that_is_not_an_origin_is_refused_at_start(monkeypatch: pytest.MonkeyPatch, bad: str) -> None:
    monkeypatch.setenv("BOT_CORS_ORIGINS", bad)
    with pytest.raises(ValidationError, match="is not an origin"):
        Settings()


@pytest.mark.parametrize(
    ("given", "normalised"),
    [
        ("http://gym.test:80", "http://gym.test"),  # browsers never send the default port
        ("https://gym.test:443/", "https://gym.test"),
        ("https://gym.test:8443", "https://gym.test:8443"),
        ("http://[::1]:80", "http://[::1]"),
    ],
)
def test_origins_are_written_as_browsers_send_them(monkeypatch: pytest.MonkeyPatch, given: str, normalised: str):
    monkeypatch.setenv("BOT_CORS_ORIGINS", given)
    assert Settings().cors_origins == [normalised]


@pytest.mark.parametrize("wildcard", ["*", "https://*.gym.example", "https://gym.*"])
def test_a_wildcard_origin_is_refused_saying_to_list_each_site(monkeypatch: pytest.MonkeyPatch, wildcard: str) -> None:
    monkeypatch.setenv("BOT_CORS_ORIGINS", wildcard)
    with pytest.raises(ValidationError, match=r"has a wildcard, which is not supported.*listed in full"):
        Settings()


def test_the_rate_limit_can_be_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOT_RATE_LIMIT", "Off")
    assert Settings().rate_limit == "off"


def test_the_allowed_hosts_always_include_the_bound_address_and_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOT_ALLOWED_HOSTS", "coach.gym.example, *.gym.example")
    assert Settings(host="0.0.0.0").resolved_allowed_hosts == ["coach.gym.example", "*.gym.example", "localhost",
                                                               "127.0.0.1", "::1"]  # fmt: skip
    assert "10.1.2.3" in Settings(host="10.1.2.3").resolved_allowed_hosts


def test_trusted_proxies_are_addresses_or_networks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOT_TRUSTED_PROXIES", "127.0.0.1, 10.0.0.0/8,::1")
    assert Settings().trusted_proxies == ["127.0.0.1/32", "10.0.0.0/8", "::1/128"]


def test_each_bad_setting_is_one_line_naming_it_its_value_and_what_is_accepted(monkeypatch) -> None:
    for name, value in {"BOT_RATE_LIMIT": "0", "BOT_PORT": "99999", "BOT_LOG_LEVEL": "LOUD",
                        "BOT_SIGNING_KEY": "short", "BOT_TRUSTED_PROXIES": "nginx"}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as error:
        Settings()
    lines = sorted(setting_errors(error.value))
    assert lines == [
        "BOT_LOG_LEVEL='LOUD': accepted: one of DEBUG, INFO, WARNING, ERROR",
        "BOT_PORT='99999': accepted: a whole number from 1 to 65535",
        "BOT_RATE_LIMIT='0': '0' is not a rate; accepted: 'off' (no per-client limit), or rates in limits notation "
        "such as '20/minute;200/hour'",
        "BOT_SIGNING_KEY=(hidden): accepted: text of at least 16 characters",
        "BOT_TRUSTED_PROXIES='nginx': 'nginx' is not an IP address or network; accepted: addresses or CIDRs such as "
        "'127.0.0.1,10.0.0.0/8,::1'",
    ]


def test_a_malformed_rate_limit_is_refused_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOT_RATE_LIMIT", "lots")
    with pytest.raises(ValidationError, match="is not a rate"):
        Settings()
