"""Serve nova's in-process functional-test stack over real HTTP (the OpenStack driver's real tier).

Runs with the nova virtualenv's python (``.ci/nova-setup.sh`` makes ``var/nova-venv``),
never with the project's: nova pins its own dependencies.

    var/nova-venv/bin/python tests/novastack/serve_nova.py [PORT]     # 0: a free port

One process holds, all from nova's own functional-test fixtures:

* API, cell0 and cell1 databases (SQLite in a temporary directory);
* placement (the real placement app, reached by nova through wsgi-intercept);
* glance, neutron and cinder *fixtures*: in-process stubs of nova's client
  libraries. They expose **no HTTP API**: there is no image or network endpoint;
* conductor, scheduler and ``NOVA_COMPUTES`` (2) nova-compute services with the fake
  virt driver: a server goes BUILD → ACTIVE in about a second;
* the compute API WSGI app, served with wsgiref (threaded) on 127.0.0.1.

It prints ``INFO {json}`` (endpoint, flavors, image ids — some change per start —,
the fixture network's id) and then ``READY http://127.0.0.1:PORT/v2.1``. SIGTERM or
SIGINT stops it (a watchdog hard-exits if the clean-up hangs).

Auth: keystonemiddleware is stubbed out as in nova's functional tests; the request
context comes from ``X-Auth-User``, ``X-Auth-Project-Id`` and ``X-Roles``. The
``DefaultAuthHeaders`` middleware fills them from a nova ``noauth2`` token
(``X-Auth-Token: user:project``) or defaults (user admin, the fixture project, roles
reader,member,admin). User ``admin`` is an admin (``all_projects`` allowed).

Env: NOVA_PORT, NOVA_HOST, NOVA_COMPUTES, NOVA_COMPUTE_DRIVER, NOVA_PROJECT_ID,
NOVA_LOG_FILE (nova's INFO log), NOVA_ACCESS_LOG=1 (request lines on stderr),
NOVA_THREADED=0 (serial HTTP server), NOVA_QUOTA_UNLIMITED=1 (default instances,
cores and ram quotas -1; nova's are 10/20/51200; per-project quota sets still apply),
NOVA_SHUTDOWN_TIMEOUT (15 s).
"""

import contextlib
import faulthandler
import importlib
import json
import logging
import os
import signal
import socketserver
import sys
import threading
import time
from wsgiref import simple_server

# Before anything imports eventlet: nova >= 32 runs on native threads; in eventlet mode a
# threaded wsgiref server deadlocks.
os.environ.setdefault("OS_NOVA_DISABLE_EVENTLET_PATCHING", "true")
# Keep oslotest from capturing stdout/stderr or imposing a timeout.
for _name in ("OS_STDOUT_CAPTURE", "OS_STDERR_CAPTURE", "OS_LOG_CAPTURE", "OS_TEST_TIMEOUT"):
    os.environ.pop(_name, None)

# nova.tests.functional first: it applies nova's monkey-patching decision.
import nova.tests.functional  # noqa: E402, F401, I001
from nova.tests import fixtures as nova_fixtures  # noqa: E402
from nova.tests.functional import integrated_helpers  # noqa: E402

T0 = time.monotonic()
# ``from nova.tests.fixtures import nova`` yields the top-level nova package (a name clash in
# the fixtures package), not the submodule.
nova_fixtures_nova = importlib.import_module("nova.tests.fixtures.nova")

PORT = int(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("NOVA_PORT", "8774"))
HOST = os.environ.get("NOVA_HOST", "127.0.0.1")
N_COMPUTES = int(os.environ.get("NOVA_COMPUTES", "2"))
COMPUTE_DRIVER = os.environ.get("NOVA_COMPUTE_DRIVER", "fake.FakeDriver")
DEFAULT_PROJECT = os.environ.get("NOVA_PROJECT_ID", nova_fixtures.PROJECT_ID)
LOG_FILE = os.environ.get("NOVA_LOG_FILE")
UNLIMITED_QUOTA = os.environ.get("NOVA_QUOTA_UNLIMITED", "") in ("1", "true")
THREADED = os.environ.get("NOVA_THREADED", "1") not in ("0", "false", "no")


def log(message: str) -> None:
    print(f"[serve_nova {time.monotonic() - T0:7.2f}s] {message}", file=sys.stderr, flush=True)


class ReaderPreferringRWLock:
    """Drop-in for nova.tests.fixtures.nova.ReaderWriterLock (fasteners), which deadlocks here.

    ``CellDatabases._cell_lock`` is a *writer-preferring* RW lock and ``DatabaseWriteLock``
    holds a per-database RLock for every writer transaction. Under real concurrency
    (threaded HTTP server, two computes, conductor) that deadlocks: thread A, inside a
    database writer transaction, needs a cell read lock and is blocked because thread B
    is *pending* for the cell write lock (``target_cell``); B waits for reader C, and C
    (holding a read lock inside ``target_cell``) waits for A's database lock. Seen with 8
    concurrent server creates. With reader preference a reader waits only for an *active*
    writer, and CellDatabases' writer sections do no database work, so the cycle cannot
    form. Same surface as fasteners: ``read_lock()``/``write_lock()`` context managers,
    reentrant readers and writer, a writer may also read.
    """

    def __init__(self, *args, **kwargs):
        self._cond = threading.Condition()
        self._readers: dict = {}
        self._writer = None
        self._writer_entries = 0

    def is_reader(self):
        return threading.current_thread() in self._readers

    def is_writer(self, check_pending=True):
        return self._writer is threading.current_thread()

    @property
    def has_pending_writers(self):
        return False

    @contextlib.contextmanager
    def read_lock(self):
        me = threading.current_thread()
        with self._cond:
            while self._writer is not None and self._writer is not me:
                self._cond.wait()
            self._readers[me] = self._readers.get(me, 0) + 1
        try:
            yield self
        finally:
            with self._cond:
                count = self._readers.get(me, 0) - 1
                if count > 0:
                    self._readers[me] = count
                else:
                    self._readers.pop(me, None)
                self._cond.notify_all()

    @contextlib.contextmanager
    def write_lock(self):
        me = threading.current_thread()
        with self._cond:
            if self._writer is me:
                self._writer_entries += 1
            else:
                if me in self._readers:
                    raise RuntimeError(f"Reader {me} to writer privilege escalation not allowed")
                while self._writer is not None or self._readers:
                    self._cond.wait()
                self._writer = me
                self._writer_entries = 1
        try:
            yield self
        finally:
            with self._cond:
                self._writer_entries -= 1
                if self._writer_entries == 0:
                    self._writer = None
                self._cond.notify_all()


if os.environ.get("NOVA_KEEP_FIXTURE_RWLOCK", "") not in ("1", "true"):
    assert hasattr(nova_fixtures_nova, "CellDatabases")
    nova_fixtures_nova.ReaderWriterLock = ReaderPreferringRWLock


class Stack(integrated_helpers._IntegratedTestBase):
    """The functional-test base class, used as a plain fixture container."""

    # Real asynchronous RPC (a cast stays a cast): POST /servers answers while the server
    # is in BUILD and the client has to poll, as with a real cloud.
    CAST_AS_CALL = False
    ADMIN_API = True
    REQUIRES_LOCKING = True

    def runTest(self):  # testtools wants a test method
        pass

    def _setup_compute_service(self):
        self.flags(compute_driver=COMPUTE_DRIVER)
        first = None
        for number in range(N_COMPUTES):
            service = self._start_compute(f"compute{number + 1}")
            first = first or service
        return first

    def _setup_services(self):
        # Spread builds over the computes: builds on one host serialise on its resource tracker lock.
        self.flags(host_subset_size=max(1, N_COMPUTES), group="filter_scheduler")
        # API, conductor, scheduler and computes share nova's thread pools in this one
        # process; the defaults (cell_worker 5, default 10) queue work at a few requests.
        self.flags(cell_worker_thread_pool_size=32, default_thread_pool_size=32)
        if UNLIMITED_QUOTA:
            for option in ("instances", "cores", "ram"):
                self.flags(**{option: -1, "group": "quota"})
        super()._setup_services()

    def shutdown(self) -> int:
        errors = 0
        while self._cleanups:
            function, args, kwargs = self._cleanups.pop()
            try:
                function(*args, **kwargs)
            except Exception as exc:  # keep cleaning up
                errors += 1
                log(f"cleanup {function!r} failed: {exc}")
        return errors


class DefaultAuthHeaders:
    """Fill the headers the stubbed keystone context expects (see the module docstring)."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        user = environ.get("HTTP_X_AUTH_USER")
        project = environ.get("HTTP_X_AUTH_PROJECT_ID")
        token = environ.get("HTTP_X_AUTH_TOKEN", "")
        if ":" in token:  # nova noauth2: "user:project"
            token_user, _, token_project = token.partition(":")
            user = user or token_user
            project = project or token_project
        user = user or "admin"
        environ["HTTP_X_AUTH_USER"] = user
        environ["HTTP_X_AUTH_PROJECT_ID"] = project or DEFAULT_PROJECT
        environ.setdefault("HTTP_X_ROLES", "reader,member,admin" if user == "admin" else "reader,member")
        return self.app(environ, start_response)


class QuietHandler(simple_server.WSGIRequestHandler):
    def log_message(self, format, *args):
        if os.environ.get("NOVA_ACCESS_LOG"):
            super().log_message(format, *args)


class ThreadingWSGIServer(socketserver.ThreadingMixIn, simple_server.WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class SerialWSGIServer(simple_server.WSGIServer):
    allow_reuse_address = True


def main() -> None:
    log("imports done")
    started = time.monotonic()
    stack = Stack("runTest")
    try:
        stack.setUp()
    except BaseException:
        log("stack setUp failed; cleaning up")
        stack.shutdown()
        raise
    log(f"stack setUp {time.monotonic() - started:.2f}s (computes={N_COMPUTES} driver={COMPUTE_DRIVER})")

    if LOG_FILE:
        handler = logging.FileHandler(LOG_FILE)
        handler.setLevel(logging.INFO)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s [%(name)s] %(message)s"))
        logging.getLogger().addHandler(handler)

    app = DefaultAuthHeaders(stack.api_fixture.app())
    server_class = ThreadingWSGIServer if THREADED else SerialWSGIServer
    httpd = simple_server.make_server(HOST, PORT, app, server_class=server_class, handler_class=QuietHandler)
    port = httpd.server_address[1]

    info = {
        "compute_endpoint": f"http://{HOST}:{port}/v2.1",
        "project_id": DEFAULT_PROJECT,
        # DefaultFlavorsFixture (nova/tests/fixtures/nova.py)
        "flavors": {"1": "m1.tiny", "2": "m1.small", "3": "m1.medium", "4": "m1.large", "5": "m1.xlarge"},
        # GlanceFixture.image1: what the functional tests boot by default
        "default_image": stack.glance.image1["id"],
        "images": sorted(image["id"] for image in stack.glance.images.values()),
        # NeutronFixture.network_1 ("private", 192.168.1.0/24)
        "network_id": stack.neutron.network_1["id"],
        "security_group": "default",
        "computes": sorted(stack.computes),
        "compute_driver": COMPUTE_DRIVER,
    }
    print("INFO " + json.dumps(info), flush=True)

    stop = threading.Event()

    def on_signal(signum, frame):
        log(f"signal {signum}: shutting down")
        stop.set()

    faulthandler.register(signal.SIGUSR1, all_threads=True)  # kill -USR1 <pid>: every thread's stack
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    thread.start()
    print(f"READY http://{HOST}:{port}/v2.1", flush=True)
    log(f"READY after {time.monotonic() - T0:.2f}s total")

    while not stop.wait(0.5):
        pass
    # Never hang on shutdown (a nova thread may be stuck).
    timeout = float(os.environ.get("NOVA_SHUTDOWN_TIMEOUT", "15"))
    watchdog = threading.Timer(timeout, lambda: (log("shutdown timed out; hard exit"), os._exit(3)))
    watchdog.daemon = True
    watchdog.start()
    httpd.shutdown()
    httpd.server_close()
    errors = stack.shutdown()
    log(f"stopped (cleanup errors: {errors})")
    # Some nova/oslo threads (executors, timers) are not daemons: do not let them keep us alive.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
