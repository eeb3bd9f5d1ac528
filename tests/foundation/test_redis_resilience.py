"""The shared cache without Redis, and the Sentinel URL format (fast: a closed port, no servers)."""

import logging

import pytest
import redis

from bench.stack import free_port
from controlplane import sentinel
from controlplane.cache import FailOpenRedisCache, OutageLog


@pytest.fixture
def unreachable_cache(settings):
    settings.CACHE_REDIS_TIMEOUT_SECONDS = 0.5
    return FailOpenRedisCache(f"redis://127.0.0.1:{free_port()}/0", {"KEY_PREFIX": "t"})


def test_without_redis_the_cache_answers_as_an_empty_one(unreachable_cache):
    cache = unreachable_cache
    assert cache.get("k", default=[]) == []
    assert cache.add("k", 1) is True  # Idempotency-Key and allauth's lock go ahead
    assert cache.set("k", 1) is None
    assert cache.get_many(["a", "b"]) == {}
    assert cache.incr("n") == 1
    assert cache.set_many({"a": 1}) == ["a"]
    assert cache.delete("k") is False and cache.has_key("k") is False


def test_the_outage_is_logged_once_a_minute_not_per_call(unreachable_cache, monkeypatch, caplog):
    monkeypatch.setattr("controlplane.cache.outage_log", OutageLog(every=60))
    with caplog.at_level(logging.WARNING, logger="controlplane.cache"):
        for _ in range(20):
            unreachable_cache.get("k")
    warnings = [r for r in caplog.records if r.name == "controlplane.cache"]
    assert len(warnings) == 1 and "Redis unreachable" in warnings[0].getMessage()


def test_only_redis_being_unreachable_is_swallowed(settings):
    # Given a reachable Redis (the suite's) and a key of the wrong type for the call
    cache = FailOpenRedisCache(settings.CELERY_BROKER_URL, {"KEY_PREFIX": "f17-wrongtype"})
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    client.rpush("f17-wrongtype:1:counter", "x")
    try:
        # Then Redis's refusal reaches the caller, as a bug should
        with pytest.raises(redis.ResponseError):
            cache.incr("counter")
    finally:
        client.delete("f17-wrongtype:1:counter")


def test_sentinel_urls_name_every_sentinel_and_the_masters_database_and_password():
    parsed = sentinel.parse("sentinel://:s3cret@10.0.0.1:26379/3;sentinel://10.0.0.2;sentinel://10.0.0.3:26380")
    assert parsed.sentinels == [("10.0.0.1", 26379), ("10.0.0.2", 26379), ("10.0.0.3", 26380)]
    assert (parsed.db, parsed.password) == (3, "s3cret")


@pytest.mark.parametrize("url", ["redis://10.0.0.1:6379/0", "sentinel://", "sentinel://h:1/x"])
def test_a_wrong_sentinel_url_is_refused(url):
    with pytest.raises(ValueError):
        sentinel.parse(url)
