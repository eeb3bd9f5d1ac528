"""The simulator hypervisor: the embedded default, and the engine's test bed.

State lives in a SQLite file (``settings["state_path"]``) so the web process,
every worker and the reconciler see the same guests, across restarts. Work is
asynchronous like a real hypervisor: a submitted action finishes
``latency`` seconds later (per action, configurable), its progress advancing
with time. Failures are injected per call with configurable transient and
permanent rates. Every guest actually created is written to ``create_log``
with its idempotency key, so a test can prove that no VM was created twice.

Settings (all optional but ``state_path``):
``latency`` (seconds, default 2) or ``latency_<action>`` per action;
``transient_failure_rate`` / ``permanent_failure_rate`` (0..1, per call);
``fail_actions`` (list of actions failures apply to, default all);
``transient_failures_first`` / ``permanent_failures_first`` ({action: n}): the
first n calls of that action on this hypervisor fail (deterministic, for tests).
"""

from __future__ import annotations

import contextlib
import json
import random
import sqlite3
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from ..base import (
    Capability,
    ConsoleProtocol,
    ConsoleTarget,
    Driver,
    DriverTask,
    HypervisorVM,
    PermanentDriverError,
    PowerState,
    TaskStatus,
    TransientDriverError,
    VMMetrics,
    VMSpec,
    register,
)
from ..loopback import SERVERS
from . import backups, console, day2
from .metrics import reading

SCHEMA = """
CREATE TABLE IF NOT EXISTS guests (
    backend_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    idempotency_key TEXT,
    power_state TEXT NOT NULL,
    vcpus INTEGER, memory_mib INTEGER, disk_gib INTEGER, image_ref TEXT,
    ip TEXT,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS guests_key ON guests(idempotency_key);
CREATE TABLE IF NOT EXISTS tasks (
    ref TEXT PRIMARY KEY,
    backend_id TEXT NOT NULL,
    action TEXT NOT NULL,
    started_at REAL NOT NULL,
    ready_at REAL NOT NULL,
    applied INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS tasks_pending ON tasks(applied, ready_at);
CREATE TABLE IF NOT EXISTS create_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    idempotency_key TEXT,
    backend_id TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS loads (
    backend_id TEXT PRIMARY KEY,
    cpu REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS calls (
    kind TEXT PRIMARY KEY,
    count INTEGER NOT NULL
);
"""

# What a finished action leaves the guest as (None: the guest is removed).
EFFECT = {
    "create": PowerState.RUNNING,
    "start": PowerState.RUNNING,
    "stop": PowerState.STOPPED,
    "reboot": PowerState.RUNNING,
    "delete": None,
}


class SimulatorStore:
    """The simulated hypervisor's persistent state. Safe across processes."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._connection().executescript(SCHEMA + day2.SCHEMA + backups.SCHEMA)

    def _connection(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
        return conn

    @contextlib.contextmanager
    def write(self):
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        else:
            conn.execute("COMMIT")

    def read(self) -> sqlite3.Connection:
        return self._connection()

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def settle(self, db: sqlite3.Connection, now: float) -> None:
        """Apply every finished task's effect (inside a write transaction)."""
        for task in db.execute("SELECT * FROM tasks WHERE applied = 0 AND ready_at <= ? ORDER BY ready_at", (now,)):
            if task["action"] in day2.ACTIONS + backups.ACTIONS:
                (backups if task["action"] in backups.ACTIONS else day2).apply_effect(db, task)
                db.execute("UPDATE tasks SET applied = 1 WHERE ref = ?", (task["ref"],))
                continue
            effect = EFFECT[task["action"]]
            if effect is None:
                db.execute("DELETE FROM guests WHERE backend_id = ?", (task["backend_id"],))
            else:
                db.execute("UPDATE guests SET power_state = ? WHERE backend_id = ?", (effect, task["backend_id"]))
            db.execute("UPDATE tasks SET applied = 1 WHERE ref = ?", (task["ref"],))

    # -- "behind our back" changes and facts, for tests and demos -----------
    def set_power(self, backend_id: str, power_state: str) -> None:
        with self.write() as db:
            db.execute("UPDATE guests SET power_state = ? WHERE backend_id = ?", (power_state, backend_id))

    def remove(self, backend_id: str) -> None:
        with self.write() as db:
            db.execute("DELETE FROM guests WHERE backend_id = ?", (backend_id,))

    def add_guest(self, name: str, power_state: str = PowerState.RUNNING, idempotency_key: str | None = None) -> str:
        backend_id = f"sim-{uuid.uuid4().hex[:12]}"
        with self.write() as db:
            db.execute(
                "INSERT INTO guests (backend_id, name, idempotency_key, power_state, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (backend_id, name, idempotency_key, power_state, time.time()),
            )
        return backend_id

    def set_load(self, backend_id: str, cpu: float | None) -> None:
        """Pin a guest's reported CPU load (0..1); None lets it move again."""
        with self.write() as db:
            db.execute("DELETE FROM loads WHERE backend_id = ?", (backend_id,))
            if cpu is not None:
                db.execute("INSERT INTO loads (backend_id, cpu) VALUES (?, ?)", (backend_id, cpu))

    def create_counts(self) -> dict[str, int]:
        rows = self.read().execute("SELECT idempotency_key, COUNT(*) AS n FROM create_log GROUP BY idempotency_key")
        return {row["idempotency_key"]: row["n"] for row in rows}

    def call_counts(self) -> dict[str, int]:
        return {row["kind"]: row["count"] for row in self.read().execute("SELECT kind, count FROM calls")}

    def power_state(self, backend_id: str) -> str | None:
        """The guest's power state now (None: no such guest), without counting a call."""
        with self.write() as db:
            self.settle(db, time.time())
            row = db.execute("SELECT power_state FROM guests WHERE backend_id = ?", (backend_id,)).fetchone()
        return row["power_state"] if row else None

    def guests(self) -> list[sqlite3.Row]:
        with self.write() as db:
            self.settle(db, time.time())
        return list(self.read().execute("SELECT * FROM guests ORDER BY created_at"))


_STORES: dict[str, SimulatorStore] = {}
_STORES_LOCK = threading.Lock()


def store_for(path: str | Path) -> SimulatorStore:
    key = str(Path(path).resolve())
    with _STORES_LOCK:
        if key not in _STORES:
            _STORES[key] = SimulatorStore(key)
        return _STORES[key]


@register("simulator")
class SimulatorDriver(day2.SimulatorDay2, backups.SimulatorBackups, Driver):
    """A hypervisor that lives in a SQLite file."""

    capabilities = frozenset(
        {
            Capability.CONSOLE,
            Capability.METRICS,
            Capability.SNAPSHOTS,
            Capability.RESIZE,
            Capability.REBUILD,
            Capability.BACKUPS,
        }
    )
    resize_live = frozenset({"disk"})  # vCPU / memory changes restart a running guest

    def __init__(self, config):
        super().__init__(config)
        path = config.settings.get("state_path")
        if not path:
            raise PermanentDriverError("The simulator needs settings.state_path.", code="misconfigured")
        self.store = store_for(path)
        self._random = random.Random(config.settings.get("seed"))

    # -- helpers ---------------------------------------------------------------
    def _setting(self, name: str, default: Any) -> Any:
        return self.config.settings.get(name, default)

    def _latency(self, action: str) -> float:
        return float(self._setting(f"latency_{action}", self._setting("latency", 2.0)))

    def _count(self, db: sqlite3.Connection, kind: str) -> None:
        db.execute(
            "INSERT INTO calls (kind, count) VALUES (?, 1) ON CONFLICT(kind) DO UPDATE SET count = count + 1", (kind,)
        )

    def _maybe_fail(self, action: str) -> None:
        self._fail_first(action)
        actions = self._setting("fail_actions", None)
        if actions is not None and action not in actions:
            return
        roll = self._random.random()
        permanent = float(self._setting("permanent_failure_rate", 0))
        transient = float(self._setting("transient_failure_rate", 0))
        if roll < permanent:
            raise PermanentDriverError(f"Simulated permanent failure during {action}.", code="simulated")
        if roll < permanent + transient:
            raise TransientDriverError(f"Simulated transient failure during {action}.", code="simulated")

    def _fail_first(self, action: str) -> None:
        transient = int(self._setting("transient_failures_first", {}).get(action, 0))
        permanent = int(self._setting("permanent_failures_first", {}).get(action, 0))
        if not (transient or permanent):
            return
        with self.store.write() as db:
            self._count(db, f"attempt:{action}")
            n = db.execute("SELECT count FROM calls WHERE kind = ?", (f"attempt:{action}",)).fetchone()[0]
        if n <= permanent:
            raise PermanentDriverError(f"Simulated permanent failure during {action} (call {n}).", code="simulated")
        if n <= permanent + transient:
            raise TransientDriverError(f"Simulated transient failure during {action} (call {n}).", code="simulated")

    @staticmethod
    def _vm(row: sqlite3.Row) -> HypervisorVM:
        return HypervisorVM(
            backend_id=row["backend_id"],
            name=row["name"],
            power_state=row["power_state"],
            idempotency_key=row["idempotency_key"],
            ip_addresses=tuple((row["ip"] or "").split()),  # static addresses from spec.network, else a DHCP-like one
        )

    def _guest(self, db: sqlite3.Connection, backend_id: str) -> sqlite3.Row | None:
        return db.execute("SELECT * FROM guests WHERE backend_id = ?", (backend_id,)).fetchone()

    def _busy_task(self, db: sqlite3.Connection, backend_id: str) -> sqlite3.Row | None:
        return db.execute(
            "SELECT * FROM tasks WHERE backend_id = ? AND applied = 0 ORDER BY started_at DESC LIMIT 1", (backend_id,)
        ).fetchone()

    def _submit(self, db: sqlite3.Connection, backend_id: str, action: str, params: dict | None = None) -> DriverTask:
        now = time.time()
        ref = f"simtask-{uuid.uuid4().hex[:16]}"
        latency = self._latency(action)
        db.execute(
            "INSERT INTO tasks (ref, backend_id, action, started_at, ready_at) VALUES (?, ?, ?, ?, ?)",
            (ref, backend_id, action, now, now + latency),
        )
        if params is not None:
            db.execute("INSERT INTO task_params (ref, params) VALUES (?, ?)", (ref, json.dumps(params)))
        if latency <= 0:  # a zero-latency hypervisor finishes while we wait for the answer
            self.store.settle(db, now)
        return DriverTask(ref=ref, backend_id=backend_id, done=latency <= 0, data={"action": action})

    # -- interface -------------------------------------------------------------
    def check(self) -> dict[str, Any]:
        guests = self.store.read().execute("SELECT COUNT(*) FROM guests").fetchone()[0]
        return {"version": "simulator-1", "state_path": str(self.store.path), "guests": guests}

    def create(self, spec: VMSpec) -> DriverTask:
        self._maybe_fail("create")
        with self.store.write() as db:
            self._count(db, "create")
            self.store.settle(db, time.time())
            existing = db.execute(
                "SELECT * FROM guests WHERE idempotency_key = ? LIMIT 1", (spec.idempotency_key,)
            ).fetchone()
            if existing is not None:
                task = db.execute(
                    "SELECT * FROM tasks WHERE backend_id = ? AND action = 'create'", (existing["backend_id"],)
                ).fetchone()
                ref = task["ref"] if task else f"adopted-{existing['backend_id']}"
                return DriverTask(ref=ref, backend_id=existing["backend_id"], data={"action": "create"})
            if not spec.image_ref:
                raise PermanentDriverError("No image reference given for this hypervisor.", code="no_image")
            backend_id = f"sim-{uuid.uuid4().hex[:12]}"
            n = int(uuid.UUID(int=random.getrandbits(128)).int % 65000) + 2
            static = [spec.network[f]["address"] for f in ("ipv4", "ipv6") if f in spec.network]
            ip = " ".join(static) or f"10.{(n >> 8) % 256}.{n % 256}.{(n * 7) % 250 + 2}"
            now = time.time()
            db.execute(
                "INSERT INTO guests VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    backend_id,
                    spec.name,
                    spec.idempotency_key,
                    PowerState.STOPPED,
                    spec.vcpus,
                    spec.memory_mib,
                    spec.disk_gib,
                    spec.image_ref,
                    ip,
                    now,
                ),
            )
            db.execute(
                "INSERT INTO create_log (idempotency_key, backend_id, at) VALUES (?, ?, ?)",
                (spec.idempotency_key, backend_id, now),
            )
            return self._submit(db, backend_id, "create")

    def _action(self, action: str, backend_id: str, *, done_if: str | None, missing_ok: bool) -> DriverTask:
        self._maybe_fail(action)
        with self.store.write() as db:
            self._count(db, action)
            self.store.settle(db, time.time())
            guest = self._guest(db, backend_id)
            if guest is None:
                if missing_ok:
                    return DriverTask(ref=f"noop-{action}", backend_id=backend_id, done=True, data={"action": action})
                raise PermanentDriverError(
                    f"Guest {backend_id} does not exist on {self.config.name}.", code="not_found"
                )
            busy = self._busy_task(db, backend_id)
            if busy is not None and busy["action"] == action:
                return DriverTask(ref=busy["ref"], backend_id=backend_id, data={"action": action})
            if busy is not None:
                raise TransientDriverError(f"Guest {backend_id} is busy with {busy['action']}.", code="busy")
            if done_if is not None and guest["power_state"] == done_if:
                return DriverTask(ref=f"noop-{action}", backend_id=backend_id, done=True, data={"action": action})
            if action == "reboot" and guest["power_state"] != PowerState.RUNNING:
                raise PermanentDriverError("Cannot reboot a guest that is not running.", code="not_running")
            return self._submit(db, backend_id, action)

    def start(self, backend_id: str) -> DriverTask:
        return self._action("start", backend_id, done_if=PowerState.RUNNING, missing_ok=False)

    def stop(self, backend_id: str, *, force: bool = False, hard_stop_after: int | None = None) -> DriverTask:
        return self._action("stop", backend_id, done_if=PowerState.STOPPED, missing_ok=False)

    def reboot(self, backend_id: str) -> DriverTask:
        return self._action("reboot", backend_id, done_if=None, missing_ok=False)

    def delete(self, backend_id: str) -> DriverTask:
        return self._action("delete", backend_id, done_if=None, missing_ok=True)

    def poll(self, task: DriverTask) -> TaskStatus:
        if task.done:
            return TaskStatus(done=True, progress=100, vm=self.get(task.backend_id) if task.backend_id else None)
        self._maybe_fail("poll")
        now = time.time()
        with self.store.write() as db:
            self._count(db, "poll")
            self.store.settle(db, now)
            row = db.execute("SELECT * FROM tasks WHERE ref = ?", (task.ref,)).fetchone()
            if row is None:
                if task.ref.startswith("adopted-"):
                    guest = self._guest(db, task.backend_id)
                    return TaskStatus(done=True, progress=100, vm=self._vm(guest) if guest else None)
                raise PermanentDriverError(f"Task {task.ref} is unknown to {self.config.name}.", code="unknown_task")
            if row["applied"]:
                guest = self._guest(db, row["backend_id"])
                vm = self._vm(guest) if guest else None
                result = day2.task_result(db, row) or backups.task_result(db, row)
                return TaskStatus(done=True, progress=100, vm=vm, result=result)
            total = max(row["ready_at"] - row["started_at"], 1e-6)
            progress = int(min(99, max(0, (now - row["started_at"]) / total * 100)))
            return TaskStatus(
                done=False,
                progress=progress,
                poll_after=max(0.0, row["ready_at"] - now),
                message=f"{row['action']} in progress",
            )

    def get(self, backend_id: str) -> HypervisorVM | None:
        self._maybe_fail("get")
        with self.store.write() as db:
            self._count(db, "get")
            self.store.settle(db, time.time())
            guest = self._guest(db, backend_id)
        return self._vm(guest) if guest else None

    def find_by_key(self, idempotency_key: str) -> HypervisorVM | None:
        with self.store.write() as db:
            self._count(db, "find")
            self.store.settle(db, time.time())
            guest = db.execute("SELECT * FROM guests WHERE idempotency_key = ? LIMIT 1", (idempotency_key,)).fetchone()
        return self._vm(guest) if guest else None

    def list_all(self) -> list[HypervisorVM]:
        self._maybe_fail("list")
        with self.store.write() as db:
            self._count(db, "list")
            self.store.settle(db, time.time())
            rows = list(db.execute("SELECT * FROM guests"))
        return [self._vm(row) for row in rows]

    def console(self, backend_id: str, *, protocol: str = ConsoleProtocol.VNC) -> ConsoleTarget:
        """A screen (VNC) or serial console the simulator draws itself (simulator/console.py)."""
        if protocol not in ConsoleProtocol.ALL:
            raise PermanentDriverError(f"No {protocol!r} console on the simulator.", code="no_console")
        with self.store.write() as db:
            self._count(db, "console")
            self.store.settle(db, time.time())
            guest = self._guest(db, backend_id)
        if guest is None:
            raise PermanentDriverError(f"Guest {backend_id} does not exist.", code="not_found")
        if guest["power_state"] != PowerState.RUNNING:
            raise PermanentDriverError(f"{guest['name']} is not running: start it to use its console.", code="off")
        store, title = self.store, f"{guest['name']} ({backend_id}) on simulator {self.config.name}"

        def running() -> bool:
            return store.power_state(backend_id) == PowerState.RUNNING

        port = SERVERS.port_for(
            ("simulator", backend_id, protocol), lambda sock: console.serve(sock, protocol, title, running)
        )
        return ConsoleTarget(protocol=protocol, host=SERVERS.host, port=port)

    def metrics(self) -> list[VMMetrics]:
        """Every guest's reading from one read of the store; counters restart at each boot."""
        self._maybe_fail("metrics")
        now = time.time()
        with self.store.write() as db:
            self._count(db, "metrics")
            self.store.settle(db, now)
            rows = list(
                db.execute(
                    "SELECT g.backend_id, g.power_state, g.vcpus, g.memory_mib, g.created_at, l.cpu AS load,"
                    " (SELECT MAX(t.ready_at) FROM tasks t WHERE t.backend_id = g.backend_id AND t.applied = 1"
                    "  AND t.action IN ('create', 'start', 'reboot')) AS booted"
                    " FROM guests g LEFT JOIN loads l ON l.backend_id = g.backend_id"
                )
            )
        return [
            reading(
                backend_id=row["backend_id"],
                power_state=row["power_state"],
                vcpus=row["vcpus"] or 1,
                memory_mib=row["memory_mib"] or 512,
                booted=row["booted"] or row["created_at"],
                now=now,
                load=row["load"],
            )
            for row in rows
        ]

    def close(self) -> None:
        self.store.close()
