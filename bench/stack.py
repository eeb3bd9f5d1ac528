"""A private, disposable copy of the production stack for benchmarks and the chaos run.

PostgreSQL and Redis run as our own processes on free loopback ports, in a
temporary directory, so a run can restart them (the chaos run does) without
touching the machine's shared services. On top of them: gunicorn, Celery
workers (``celery_worker.py``) and beat, each in its own process group with a
log file, started with one environment (:meth:`Stack.env`).

    with Stack(workdir) as stack:          # PostgreSQL + Redis up
        stack.create_database("cp_chaos")
        stack.manage("migrate")
        stack.start_worker("w1"); stack.start_beat(); stack.start_web()
        ...
        stack.restart_redis(outage=2)       # queued messages are lost: Redis keeps nothing
        stack.restart_postgres(outage=2)
    # everything stopped, the directory removed unless keep=True

Only 127.0.0.1 is ever used.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
# Settings a caller's environment may carry (a test run's) that must not leak into the stack.
INHERITED_NOT = ("ENGINE_", "CELERY_", "DJANGO_", "DATABASE_URL", "CACHE_URL", "API_THROTTLE", "WORKER_")
PG_BIN_CANDIDATES = ("/usr/lib/postgresql/17/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/15/bin")


def exit_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit, so ``finally`` blocks stop the private stack."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def recreate_database(url: str) -> None:
    """Drop (forcing other sessions off) and create the database ``url`` names."""
    import psycopg

    name = url.rsplit("/", 1)[1]
    server = url.rsplit("/", 1)[0].replace("postgres://", "postgresql://")
    with psycopg.connect(server + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def wait_until(predicate, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise RuntimeError(f"{what}: not ready after {timeout:.0f} s")


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


def pg_bin() -> Path:
    for candidate in PG_BIN_CANDIDATES:
        if (Path(candidate) / "initdb").exists():
            return Path(candidate)
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    raise RuntimeError("PostgreSQL server binaries (initdb, pg_ctl) not found; install postgresql.")


class PrivatePostgres:
    """A throw-away PostgreSQL cluster (trust auth, user ``postgres``) on a free port.

    initdb refuses to run as root, so as root every server command runs as the
    ``postgres`` system user (``runuser``).
    """

    def __init__(self, directory: Path, port: int | None = None, settings: dict | None = None):
        self.dir = directory
        self.data = directory / "data"
        self.port = port or free_port()
        self.log = directory / "postgres.log"
        self.settings = {"max_connections": "300", "listen_addresses": HOST, "unix_socket_directories": str(directory)}
        self.settings.update(settings or {})
        self.bin = pg_bin()

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        command = [str(self.bin / args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True)
        if check and result.returncode != 0:
            raise RuntimeError(
                f"{args[0]} failed ({result.returncode}): {result.stderr.strip() or result.stdout.strip()}"
            )
        return result

    def init(self) -> PrivatePostgres:
        self.dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            entry = pwd.getpwnam("postgres")
            os.chown(self.dir, entry.pw_uid, entry.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8")
        return self

    def start(self) -> None:
        options = " ".join(f"-c {key}={value}" for key, value in self.settings.items())
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-w",
            "-t",
            "60",
            "-o",
            f"-p {self.port} {options}",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop", check=False)

    def running(self) -> bool:
        return self._run("pg_ctl", "-D", str(self.data), "status", check=False).returncode == 0

    def url(self, database: str) -> str:
        return f"postgres://postgres@{HOST}:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(host=HOST, port=self.port, user="postgres", dbname="postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def version(self) -> str:
        return self._run("postgres", "--version", check=False).stdout.strip()


class PrivateRedis:
    """``redis-server`` on a free port, keeping nothing on disk (a restart empties it).

    ``replica_of``: the port of a PrivateRedis this one replicates (for Sentinel)."""

    def __init__(self, directory: Path, port: int | None = None, *, replica_of: int | None = None):
        self.dir = directory
        self.port = port or free_port()
        self.log = directory / "redis.log"
        self.replica_of = replica_of
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                HOST,
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--dir",
                str(self.dir),
                "--logfile",
                str(self.log),
                *(["--replicaof", HOST, str(self.replica_of)] if self.replica_of else []),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_until(lambda: _port_open(self.port), 30, f"redis on port {self.port}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def kill(self) -> None:
        """SIGKILL: a crash, nothing flushed or handed over."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def url(self, db: int = 0) -> str:
        return f"redis://{HOST}:{self.port}/{db}"

    def version(self) -> str:
        return subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout.strip()


class PrivateSentinel(PrivateRedis):
    """``redis-server --sentinel`` watching the master ``name`` at ``master_port``, alone (quorum 1)
    and quick to act: the master is declared down after ``down_after_ms`` without answers."""

    def __init__(self, directory: Path, *, name: str, master_port: int, down_after_ms: int = 1000):
        super().__init__(directory)
        self.log = directory / "sentinel.log"
        self.name, self.master_port, self.down_after_ms = name, master_port, down_after_ms

    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        config = self.dir / "sentinel.conf"  # Sentinel rewrites its configuration file as it learns
        config.write_text(
            f"port {self.port}\nbind {HOST}\ndaemonize no\ndir {self.dir}\nlogfile {self.log}\n"
            f"sentinel monitor {self.name} {HOST} {self.master_port} 1\n"
            f"sentinel down-after-milliseconds {self.name} {self.down_after_ms}\n"
            f"sentinel failover-timeout {self.name} 10000\n"
        )
        self.proc = subprocess.Popen(
            ["redis-server", str(config), "--sentinel"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_until(lambda: _port_open(self.port), 30, f"sentinel on port {self.port}")

    def master_port_now(self) -> int:
        host, port = redis.Redis(host=HOST, port=self.port).execute_command(
            "SENTINEL", "get-master-addr-by-name", self.name
        )
        return int(port)

    def url(self, db: int = 0) -> str:
        return f"sentinel://{HOST}:{self.port}/{db}"


@dataclass
class Service:
    """One long-running child (web, worker, beat) in its own process group."""

    name: str
    command: list[str]
    log: Path
    env: dict
    proc: subprocess.Popen | None = None
    starts: int = 0
    kills: int = 0
    unexpected_exits: list[int] = field(default_factory=list)

    def start(self) -> Service:
        handle = open(self.log, "ab")
        self.proc = subprocess.Popen(
            self.command, cwd=ROOT, env=self.env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )
        handle.close()
        self.starts += 1
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal_group(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass

    def kill(self) -> None:
        """SIGKILL the whole group: nothing acknowledged, no warm shutdown."""
        if self.alive():
            self.signal_group(signal.SIGKILL)
            self.proc.wait(15)
            self.kills += 1

    def stop(self, timeout: float = 20) -> None:
        if not self.alive():
            return
        self.signal_group(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.signal_group(signal.SIGKILL)
            self.proc.wait(10)

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""


class Stack:
    """Private PostgreSQL + Redis, and the control plane's processes on top of them."""

    def __init__(
        self,
        workdir: Path | None = None,
        *,
        keep: bool = False,
        database: str = "cp_stack",
        engine: dict | None = None,
        extra_env: dict | None = None,
    ):
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="cp-stack-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.keep = keep
        self.database = database
        # Its own top-level directory: the server runs as ``postgres`` and must reach it,
        # which a caller's private directory (pytest's tmp_path) does not allow.
        self.pg_root = Path(tempfile.mkdtemp(prefix="cp-pg-"))
        self.pg_root.chmod(0o755)
        self.postgres = PrivatePostgres(self.pg_root / "pg")
        self.redis = PrivateRedis(self.workdir / "redis")
        self.engine = engine or {}
        self.extra_env = extra_env or {}
        self.services: dict[str, Service] = {}
        self.web_port: int | None = None
        (self.workdir / "logs").mkdir(exist_ok=True)
        (self.workdir / "var" / "static").mkdir(parents=True, exist_ok=True)

    # -- lifecycle -----------------------------------------------------------------
    def __enter__(self) -> Stack:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self) -> None:
        self.postgres.init().start()
        self.redis.start()
        self.postgres.create_database(self.database)

    def close(self) -> None:
        for service in reversed(list(self.services.values())):
            service.stop()
        self.redis.stop()
        self.postgres.stop("fast")
        if not self.keep:
            shutil.rmtree(self.workdir, ignore_errors=True)
            shutil.rmtree(self.pg_root, ignore_errors=True)

    # -- environment ------------------------------------------------------------------
    @property
    def database_url(self) -> str:
        return self.postgres.url(self.database)

    @property
    def broker_url(self) -> str:
        return self.redis.url(0)

    def env(self, **overrides) -> dict:
        env = {key: value for key, value in os.environ.items() if not key.startswith(INHERITED_NOT)}
        env.update(
            {
                "DJANGO_SETTINGS_MODULE": "controlplane.settings",
                "DATABASE_URL": self.database_url,
                "CELERY_BROKER_URL": self.broker_url,
                "CACHE_URL": self.redis.url(2),  # as production: one cache shared by every web process
                "CONTROLPLANE_VAR_DIR": str(self.workdir / "var"),
                "SECRET_KEY": "private-stack-secret-key-not-for-production-0123456789",
                "LOG_LEVEL": "WARNING",
                "PYTHONUNBUFFERED": "1",
                "API_THROTTLE_USER": "1000000/min",
                "API_THROTTLE_ANON": "1000000/min",
            }
        )
        env.update({f"ENGINE_{key}": str(value) for key, value in self.engine.items()})
        env.update(self.extra_env)
        env.update(overrides)
        return env

    def apply_env(self) -> None:
        """Point this process (its Django) at the private stack."""
        for key in [key for key in os.environ if key.startswith(INHERITED_NOT)]:
            del os.environ[key]
        os.environ.update(self.env())

    def manage(self, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), *args], cwd=ROOT, env=self.env(), capture_output=True, text=True
        )
        if result.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result.stdout

    # -- services -------------------------------------------------------------------
    def _service(self, name: str, command: list[str], **env) -> Service:
        service = Service(name=name, command=command, log=self.workdir / "logs" / f"{name}.log", env=self.env(**env))
        self.services[name] = service
        return service.start()

    def start_worker(
        self, name: str, *, queues: str, concurrency: int = 4, pool: str = "prefork", loglevel: str = "WARNING"
    ) -> Service:
        command = [
            sys.executable,
            str(ROOT / "celery_worker.py"),
            "--queues",
            queues,
            "--concurrency",
            str(concurrency),
            "--pool",
            pool,
            "--hostname",
            f"{name}@proof",
            "--loglevel",
            loglevel,
        ]
        return self._service(name, command)

    def start_beat(self) -> Service:
        schedule = self.workdir / "var" / "celerybeat-schedule"
        command = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "controlplane",
            "beat",
            "--schedule",
            str(schedule),
            "--loglevel",
            "WARNING",
        ]
        return self._service("beat", command)

    def start_web(self, *, workers: int = 2, threads: int = 4, port: int | None = None) -> Service:
        self.web_port = port or free_port()
        gunicorn = str(Path(sys.executable).parent / "gunicorn")
        command = [
            gunicorn,
            "controlplane.wsgi",
            "--bind",
            f"{HOST}:{self.web_port}",
            "--workers",
            str(workers),
            "--threads",
            str(threads),
            "--graceful-timeout",
            "5",
            "--timeout",
            "60",
        ]
        service = self._service("web", command)
        wait_until(lambda: _answers(f"{self.web_url}/healthz") or not service.alive(), 90, "gunicorn")
        if not service.alive():
            raise RuntimeError(f"gunicorn exited:\n{service.tail()}")
        return service

    @property
    def web_url(self) -> str:
        return f"http://{HOST}:{self.web_port}"

    def restart_service(self, name: str) -> Service:
        service = self.services[name]
        service.stop()
        return service.start()

    # -- chaos --------------------------------------------------------------------------
    def restart_redis(self, outage: float = 2.0) -> None:
        self.redis.stop()
        time.sleep(outage)
        self.redis.start()

    def restart_postgres(self, outage: float = 2.0, mode: str = "fast") -> None:
        self.postgres.stop(mode)
        time.sleep(outage)
        self.postgres.start()

    def facts(self) -> dict:
        postgres = self.postgres.version().replace("postgres (PostgreSQL)", "PostgreSQL").split(" (")[0]
        redis = next((p[2:] for p in self.redis.version().split() if p.startswith("v=")), "?")
        return {"postgres": postgres, "redis": f"Redis {redis}"}
