"""Redis Sentinel URLs, one format for the broker, the cache and the beat lock.

    sentinel://[:PASSWORD@]HOST:PORT[/DB];sentinel://HOST2:PORT2;...

is kombu's own broker URL format: every ``;``-separated part names one
sentinel; the password and database of the first part are those of the Redis
master (not of the sentinels). Which master: ``REDIS_SENTINEL_MASTER``; a
password for the sentinels themselves: ``REDIS_SENTINEL_PASSWORD``. The
client asks the sentinels for the current master on every (re)connection, so
after a failover the next connection goes to the promoted replica.

No Django settings are read here; callers pass them (settings imports this).
"""

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import redis
from redis.sentinel import Sentinel

SCHEME = "sentinel://"
DEFAULT_PORT = 26379


@dataclass(frozen=True)
class SentinelURL:
    sentinels: list[tuple[str, int]]
    db: int
    username: str | None
    password: str | None


def is_sentinel_url(url: str) -> bool:
    return url.startswith(SCHEME)


def parse(url: str) -> SentinelURL:
    parts = [urlsplit(part.strip()) for part in url.split(";") if part.strip()]
    if not parts or any(part.scheme != "sentinel" or not part.hostname for part in parts):
        raise ValueError(f"not a Sentinel URL (sentinel://host:port[/db];sentinel://...): {url!r}")
    first = parts[0]
    path = first.path.strip("/")
    if path and not path.isdigit():
        raise ValueError(f"the database in a Sentinel URL is a number: {url!r}")
    return SentinelURL(
        sentinels=[(part.hostname, part.port or DEFAULT_PORT) for part in parts],
        db=int(path or 0),
        username=unquote(first.username) if first.username else None,
        password=unquote(first.password) if first.password else None,
    )


def master_client(
    url: str, *, master_name: str, sentinel_password: str = "", timeout: float = 5.0, **connection_kwargs
) -> redis.Redis:
    """A client of the current master; it re-asks the sentinels whenever it reconnects."""
    parsed = parse(url)
    sentinel_kwargs = {"socket_connect_timeout": timeout, "socket_timeout": timeout}
    if sentinel_password:
        sentinel_kwargs["password"] = sentinel_password
    connection_kwargs.setdefault("socket_connect_timeout", timeout)
    connection_kwargs.setdefault("socket_timeout", timeout)
    manager = Sentinel(parsed.sentinels, sentinel_kwargs=sentinel_kwargs, **connection_kwargs)
    return manager.master_for(
        master_name, db=parsed.db, username=parsed.username, password=parsed.password, redis_class=redis.Redis
    )


def broker_transport_options(*, master_name: str, sentinel_password: str = "") -> dict:
    """kombu's Sentinel transport options for a ``sentinel://`` broker URL."""
    options = {"master_name": master_name}
    if sentinel_password:
        options["sentinel_kwargs"] = {"password": sentinel_password}
    return options
