"""Opening Redis connections the way every Skyline process must."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import redis

from core.embedded import ensure_embedded_redis
from core.settings import ConfigError, Settings


class RedisUnavailableError(ConfigError):
    """Redis could not be reached at the configured URL."""


def redact(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def redis_url(settings: Settings, connection: str | None = None) -> str:
    configured = settings.connection(connection).url or settings.redis_url
    return configured or ensure_embedded_redis(settings.state_dir)


def connect(settings: Settings, connection: str | None = None) -> redis.Redis:
    """A client for the connection, refused if its Redis could evict jobs."""
    url = redis_url(settings, connection)
    client = redis.Redis.from_url(url, health_check_interval=30)
    try:
        policy = client.info("memory").get("maxmemory_policy", "noeviction")
    except redis.RedisError as exc:
        raise RedisUnavailableError(
            f"cannot reach Redis at {redact(url)}: {exc} (is it running? check REDIS_URL)"
        ) from None
    if policy != "noeviction":
        raise ConfigError(
            f"Redis at {redact(url)} has maxmemory-policy {policy}, which can evict queued "
            "jobs: set `maxmemory-policy noeviction` in its configuration"
        )
    return client
