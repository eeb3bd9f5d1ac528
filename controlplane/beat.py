"""A Celery beat scheduler that schedules in one place only.

Run as many beat processes as you like (one per machine for failover); only
the holder of the scheduler lock sends periodic tasks, the others stand by::

    celery -A controlplane beat -S controlplane.beat:SingletonScheduler

- On Redis (the broker, or ``BEAT_LOCK_URL``; a ``sentinel://`` URL follows the
  master Sentinel names, controlplane/sentinel.py) the lock is a key with a TTL
  (``BEAT_LOCK_TTL_SECONDS``, 30 by default) that the leader renews every
  third of it. A leader that dies stops renewing; a standby takes over within
  about 1.3 TTL. A leader that cannot renew (Redis unreachable, or it was
  paused longer than the TTL) steps down before sending anything else.
- The leader records when each entry last ran in Redis; a new leader starts
  from those times, so a takeover neither repeats a job that just ran nor
  postpones a daily one.
- On the filesystem broker (one machine) the lock is ``flock`` on
  ``var/beat.lock``, released by the kernel when the holder exits.

A standby does not open its schedule file until it leads, so two beats on one
machine never fight over it.
"""

import fcntl
import logging
import os
import socket
import time
from datetime import UTC, datetime
from pathlib import Path

import redis
from celery.beat import PersistentScheduler
from celery.utils.time import maybe_make_aware
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from controlplane import sentinel

logger = logging.getLogger(__name__)


def holder_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class RedisLeaderLock:
    """A Redis key with a TTL, set only if absent and renewed only by its holder."""

    def __init__(self, url: str, key: str, ttl: float):
        self.key, self.ttl = key, ttl
        if sentinel.is_sentinel_url(url):
            self.client = sentinel.master_client(
                url, master_name=settings.REDIS_SENTINEL_MASTER, sentinel_password=settings.REDIS_SENTINEL_PASSWORD
            )
        else:
            self.client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        self.lock = self.client.lock(f"{key}:leader", timeout=ttl, thread_local=False)
        self.runs_key = f"{key}:last-run"

    def acquire(self) -> bool:
        try:
            return self.lock.acquire(blocking=False, token=holder_id())
        except redis.RedisError as exc:
            logger.warning("beat: cannot reach Redis for the scheduler lock: %s", exc)
            return False

    def renew(self) -> bool:
        try:
            self.lock.reacquire()  # atomic: resets the TTL only if the key still holds our token
            return True
        except (redis.RedisError, redis.exceptions.LockError) as exc:
            logger.error("beat: could not renew the scheduler lock: %s", exc)
            return False

    def release(self) -> None:
        try:
            self.lock.release()
        except (redis.RedisError, redis.exceptions.LockError):
            pass  # expired or unreachable: nothing of ours to release

    def holder(self) -> str | None:
        value = self.client.get(f"{self.key}:leader")
        return value.decode() if value else None

    def record_run(self, name: str, at: float) -> None:
        try:
            self.client.hset(self.runs_key, name, repr(at))
        except redis.RedisError as exc:
            logger.warning("beat: could not record the run of %s: %s", name, exc)

    def last_runs(self) -> dict[str, float]:
        return {k.decode(): float(v) for k, v in self.client.hgetall(self.runs_key).items()}


class FileLeaderLock:
    """``flock`` on a file under var/: one machine, released when the holder exits."""

    ttl = 3.0

    def __init__(self, path: Path):
        self.path = path
        self.fd: int | None = None

    def acquire(self) -> bool:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, holder_id().encode())
        self.fd = fd
        return True

    def renew(self) -> bool:
        return self.fd is not None

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def holder(self) -> str | None:
        if self.fd is not None:
            return holder_id()
        if not self.path.exists():
            return None
        fd = os.open(self.path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return self.path.read_text().strip() or "unknown"
        finally:
            os.close(fd)
        return None

    def record_run(self, name: str, at: float) -> None:
        """Nothing to share: beats on one machine use the same schedule file."""

    def last_runs(self) -> dict[str, float]:
        return {}


def leader_lock() -> RedisLeaderLock | FileLeaderLock:
    url = settings.BEAT_LOCK_URL or settings.CELERY_BROKER_URL
    if url.startswith(("redis://", "rediss://", "unix://", sentinel.SCHEME)):
        return RedisLeaderLock(url, settings.BEAT_LOCK_KEY, settings.BEAT_LOCK_TTL_SECONDS)
    if url.startswith("filesystem://"):
        return FileLeaderLock(settings.VAR_DIR / "beat.lock")
    raise ImproperlyConfigured(
        "The beat scheduler lock needs Redis: set BEAT_LOCK_URL=redis://... when the broker is not Redis."
    )


class SingletonScheduler(PersistentScheduler):
    """PersistentScheduler that only sends while it holds the scheduler lock."""

    def __init__(self, *args, **kwargs):
        self.leader_lock = leader_lock()
        self.is_leader = False
        self._said_standby = False
        self._closed = False
        super().__init__(*args, **kwargs)

    @property
    def check_interval(self) -> float:
        """How often the leader renews and a standby tries to take over."""
        return max(self.leader_lock.ttl / 3, 0.2)

    def setup_schedule(self):
        """Deferred until this process leads (see ``_take_lead``)."""

    def tick(self, *args, **kwargs):
        if self._closed:
            # Beat's SIGTERM handler closed us and raised SystemExit; should anything
            # on the way have swallowed it, stop here rather than lead again.
            raise SystemExit()
        if not self._lead():
            return self.check_interval
        return min(super().tick(*args, **kwargs), self.check_interval)

    def apply_entry(self, entry, producer=None):
        # Recorded before sending: a leader dying in between skips this run
        # rather than letting its successor send it a second time.
        self.leader_lock.record_run(entry.name, time.time())
        super().apply_entry(entry, producer=producer)

    def close(self):
        """Beat is stopping: save the schedule and hand the lock over at once."""
        self._closed = True
        self._step_down()

    def _step_down(self) -> None:
        try:
            super().close()
        finally:
            self._store = None
            if self.is_leader:
                self.leader_lock.release()
                self.is_leader = False

    def _lead(self) -> bool:
        if self.is_leader:
            if self.leader_lock.renew():
                return True
            logger.error("beat: lost the scheduler lock; standing by without sending anything")
            self._step_down()
            return False
        if not self.leader_lock.acquire():
            if not self._said_standby:
                logger.info("beat: standing by, the scheduler lock is held by %s", self._holder())
                self._said_standby = True
            return False
        self._take_lead()
        return True

    def _take_lead(self) -> None:
        self.is_leader, self._said_standby = True, False
        super().setup_schedule()
        for name, at in self.leader_lock.last_runs().items():
            entry = self.schedule.get(name)
            if entry is None:
                continue
            shared = datetime.fromtimestamp(at, tz=UTC)
            # An entry that never ran here carries "now" as its last run: the shared time wins.
            if not entry.total_run_count or shared > maybe_make_aware(entry.last_run_at):
                entry.last_run_at = shared
                self.schedule[name] = entry
        self._heap = None  # rebuild from the adopted times
        logger.info("beat: took the scheduler lock as %s; sending periodic tasks", holder_id())

    def _holder(self) -> str:
        try:
            return self.leader_lock.holder() or "nobody (yet)"
        except redis.RedisError:
            return "unknown (Redis unreachable)"
