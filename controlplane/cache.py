"""The shared cache on Redis, failing open while Redis is unreachable.

What the cache holds is advisory: API throttle histories, Idempotency-Key
records, allauth's rate-limit counters. None of it is worth refusing a request
for, and the Operation table (the outbox) is what makes an accepted action
survive a broker outage. So when Redis cannot be reached every call answers as
an empty cache would (``get`` gives the default, ``add`` succeeds, writes are
dropped) and one warning per process per minute says so; the first call after
Redis is back uses it again. Sessions are not here (``SESSION_ENGINE`` is the
database).

``LOCATION`` is a ``redis://`` URL or a Sentinel URL
(``sentinel://host:26379[/db];sentinel://host2:26379``, see
controlplane/sentinel.py), the master named by ``REDIS_SENTINEL_MASTER``.
"""

import functools
import logging
import threading
import time

import redis
from django.conf import settings
from django.core.cache.backends.redis import RedisCache, RedisCacheClient

from controlplane import sentinel

logger = logging.getLogger(__name__)

# Errors that mean "Redis is not there right now", not "we used it wrongly":
# refused/reset/timed out, the master being elected (sentinel), a demoted master.
UNAVAILABLE = (redis.ConnectionError, redis.TimeoutError, redis.exceptions.ReadOnlyError)
WARN_EVERY_SECONDS = 60.0


class OutageLog:
    """One warning per ``every`` seconds, counting the calls answered without Redis meanwhile."""

    def __init__(self, every: float = WARN_EVERY_SECONDS):
        self.every = every
        self._lock = threading.Lock()
        self._last_warned: float | None = None
        self._failures = 0

    def failed(self, exc: Exception) -> None:
        with self._lock:
            self._failures += 1
            now = time.monotonic()
            if self._last_warned is not None and now - self._last_warned < self.every:
                return
            failures, self._failures, self._last_warned = self._failures, 0, now
        logger.warning(
            "cache: Redis unreachable (%s: %s); %d cache call(s) answered without it since the last warning. "
            "API throttles, Idempotency-Key and login rate limits are not enforced until it is back.",
            type(exc).__name__,
            exc,
            failures,
        )


outage_log = OutageLog()


def _fail_open(fallback):
    """Run the cache method; while Redis is unreachable return ``fallback(*args, **kwargs)`` instead."""

    def decorate(method):
        @functools.wraps(method)
        def call(self, *args, **kwargs):
            try:
                return method(self, *args, **kwargs)
            except UNAVAILABLE as exc:
                outage_log.failed(exc)
                return fallback(*args, **kwargs)

        return call

    return decorate


class SentinelCacheClient(RedisCacheClient):
    """Django's Redis client, with the connection pool of the master the sentinels name."""

    def _get_connection_pool(self, write):
        if 0 not in self._pools:
            client = sentinel.master_client(
                self._servers[0],
                master_name=settings.REDIS_SENTINEL_MASTER,
                sentinel_password=settings.REDIS_SENTINEL_PASSWORD,
                timeout=settings.CACHE_REDIS_TIMEOUT_SECONDS,
                **self._pool_options,
            )
            self._pools[0] = client.connection_pool
        return self._pools[0]


class FailOpenRedisCache(RedisCache):
    def __init__(self, server, params):
        params = {**params, "OPTIONS": {**cache_connection_options(), **params.get("OPTIONS", {})}}
        if isinstance(server, str) and sentinel.is_sentinel_url(server):
            server = [server]  # one Sentinel URL holds ';'-separated sentinels, not several servers
        super().__init__(server, params)
        if sentinel.is_sentinel_url(self._servers[0]):
            self._class = SentinelCacheClient

    add = _fail_open(lambda *a, **k: True)(RedisCache.add)
    get = _fail_open(lambda key, default=None, version=None: default)(RedisCache.get)
    set = _fail_open(lambda *a, **k: None)(RedisCache.set)
    touch = _fail_open(lambda *a, **k: False)(RedisCache.touch)
    delete = _fail_open(lambda *a, **k: False)(RedisCache.delete)
    get_many = _fail_open(lambda *a, **k: {})(RedisCache.get_many)
    has_key = _fail_open(lambda *a, **k: False)(RedisCache.has_key)
    incr = _fail_open(lambda key, delta=1, version=None: delta)(RedisCache.incr)
    set_many = _fail_open(lambda data, *a, **k: list(data))(RedisCache.set_many)
    delete_many = _fail_open(lambda *a, **k: None)(RedisCache.delete_many)
    clear = _fail_open(lambda *a, **k: False)(RedisCache.clear)


def cache_connection_options() -> dict:
    """Short timeouts: a request waits at most this long on an unreachable Redis per cache call."""
    timeout = settings.CACHE_REDIS_TIMEOUT_SECONDS
    return {"socket_connect_timeout": timeout, "socket_timeout": timeout}
