"""The web settings: origins, limits and the server address come from BOT_* variables."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from bot.settings import Settings


def test_the_defaults_serve_on_loopback_with_no_other_site_allowed() -> None:
    settings = Settings()
    assert (settings.host, settings.port, settings.cors_origins) == ("127.0.0.1", 7860, [])


def test_origins_are_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOT_CORS_ORIGINS", "https://Gym.example, http://127.0.0.1:8000/")
    assert Settings().cors_origins == ["https://gym.example", "http://127.0.0.1:8000"]


@pytest.mark.parametrize("bad", ["gym.example", "https://gym.example/page", "ftp://gym.example", "*"])
def test_something_that_is_not_an_origin_is_refused_at_start(monkeypatch: pytest.MonkeyPatch, bad: str) -> None:
    monkeypatch.setenv("BOT_CORS_ORIGINS", bad)
    with pytest.raises(ValidationError, match="is not an origin"):
        Settings()


def test_a_malformed_rate_limit_is_refused_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOT_RATE_LIMIT", "lots")
    with pytest.raises(ValidationError, match="is not a rate"):
        Settings()
