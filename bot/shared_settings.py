"""The settings of the servers every instance of a deployment shares besides Chroma: Redis and PostgreSQL.

Declared here, apart from ``bot.settings`` (whose ``Settings`` includes them), with the helpers for their URLs.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings

__all__ = ["SharedSettings", "server_address"]


class SharedSettings(BaseSettings):
    """The servers every instance of a deployment shares besides Chroma: Redis for the limits, PostgreSQL for ratings.

    Both URLs may hold a password: they are secrets, never shown in an error or a log line.
    """

    redis_url: SecretStr | None = Field(
        None,
        description="A Redis server (e.g. redis://10.0.0.4:6379/0) in which every worker of every instance counts "
        "the rate limits and site caps. Empty: each worker counts in its own memory.",
    )
    database_url: SecretStr | None = Field(
        None,
        description="A PostgreSQL database (e.g. postgresql://coach:secret@10.0.0.4:5432/coach) that keeps the "
        "ratings of every instance. Empty: SQLite in BOT_DATA_DIR.",
    )

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, url: SecretStr | None) -> SecretStr | None:
        if url is not None and not _is_server_url(url.get_secret_value(), {"redis", "rediss"}, {"unix"}):
            raise ValueError("accepted: a Redis URL such as 'redis://127.0.0.1:6379/0' (rediss:// with TLS, "
                             "unix:///run/redis/redis.sock for a socket)")  # fmt: skip
        return url

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, url: SecretStr | None) -> SecretStr | None:
        if url is None:
            return None
        text = url.get_secret_value()
        rest = text.partition("://")[2]
        if not _is_server_url(text, {"postgresql", "postgres", "postgresql+psycopg"}) or not urlsplit(text).path[1:]:
            raise ValueError("accepted: a PostgreSQL URL naming its database, such as "
                             "'postgresql://coach:secret@127.0.0.1:5432/coach'")  # fmt: skip
        return SecretStr(f"postgresql+psycopg://{rest}")  # SQLAlchemy's name for the psycopg 3 driver


def _is_server_url(url: str, schemes: set[str], socket_schemes: frozenset[str] | set[str] = frozenset()) -> bool:
    """Whether ``url`` names a server by one of ``schemes`` and a host (with a valid port), or a socket path."""
    parts = urlsplit(url)
    if parts.scheme in socket_schemes:
        return bool(parts.path)
    try:
        parts.port  # noqa: B018 -- raises on a port that is not a number in range
    except ValueError:
        return False
    return parts.scheme in schemes and bool(parts.hostname)


def server_address(url: SecretStr) -> str:
    """Where a server URL points, ``host:port`` (or a socket's path), without user or password: for logs."""
    parts = urlsplit(url.get_secret_value())
    return parts.netloc.rpartition("@")[2] or parts.path
