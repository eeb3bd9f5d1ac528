"""Root fixtures. Domain fixtures live in tests/fixtures/ and are collected here."""

import pytest
import redis
from django.conf import settings

from tests.workerproc import WorkerProcess

pytest_plugins = [
    "tests.fixtures.factories",
    "tests.fixtures.compute",
    "tests.fixtures.audit",
    "tests.fixtures.proxmox",
    "tests.fixtures.accounts",
    "tests.fixtures.billing",
    "tests.fixtures.payments",
    # OpenStack (issue #6): requests-mock cloud and nova's functional-test stack
    "tests.fixtures.openstack",
    "tests.fixtures.portal",
    "tests.fixtures.browser",
    "tests.fixtures.console",
    "tests.fixtures.notifications",
    "tests.fixtures.metrics",
    "tests.fixtures.powerdns",
    "tests.fixtures.neutronstack",
]


def pytest_sessionstart(session):
    """Fail loudly, not skip, when the real services are not there."""
    url = settings.CELERY_BROKER_URL
    if url.startswith("redis://"):
        try:
            redis.Redis.from_url(url, socket_connect_timeout=3).ping()
        except redis.RedisError as exc:
            raise pytest.UsageError(f"Redis at {url} is unreachable ({exc}); the suite needs it.") from exc


@pytest.fixture(scope="session")
def worker_log_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("workers")


def _purge_broker():
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    client.flushdb()


@pytest.fixture(scope="session")
def celery_worker_factory(django_db_setup, django_db_blocker, worker_log_dir):
    """Start real worker subprocesses against the test database and Redis.

    ``celery_worker_factory(queues="control,sim", name="w1")`` returns a started
    WorkerProcess; all are stopped at the end of the session.
    """
    started: list[WorkerProcess] = []
    _purge_broker()

    def start(*, queues: str = "control,sim-test", name: str = "w1", **kwargs) -> WorkerProcess:
        with django_db_blocker.unblock():
            worker = WorkerProcess(queues=queues, name=name, log_dir=worker_log_dir, **kwargs)
            started.append(worker)
            return worker.start()

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture(scope="session")
def _session_worker(celery_worker_factory):
    return celery_worker_factory(queues="control,sim-test", name="main")


@pytest.fixture
def live_worker(_session_worker, transactional_db):
    """A running worker for this test (session-wide process; restarted if a test killed it)."""
    if _session_worker.proc.poll() is not None:
        _session_worker.start()
    return _session_worker
