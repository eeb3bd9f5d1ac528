"""The simulator's day-2 capabilities: snapshots and resize.

Like the power actions they are tasks in the simulator's SQLite file that finish
``latency_<action>`` seconds later (failures injected the same way), so the engine's
submit-then-poll, crash and retry paths run against them. A task's parameters are
kept in ``task_params``; ``apply_effect`` is what a finished task does to the guest.
"""

from __future__ import annotations

import json
import sqlite3
import time

from ..base import DriverTask, PermanentDriverError, ResizeSpec, SnapshotInfo, TransientDriverError, VMSpec

SCHEMA = """
CREATE TABLE IF NOT EXISTS task_params (ref TEXT PRIMARY KEY, params TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS snapshots (
    backend_id TEXT NOT NULL,
    ref TEXT NOT NULL,
    size_bytes INTEGER,
    created_at REAL NOT NULL,
    PRIMARY KEY (backend_id, ref)
);
CREATE TABLE IF NOT EXISTS rebuilds (
    backend_id TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    image_ref TEXT NOT NULL,
    at REAL NOT NULL,
    PRIMARY KEY (backend_id, idempotency_key)
);
"""

ACTIONS = ("snapshot_create", "snapshot_revert", "snapshot_delete", "resize", "rebuild")


def apply_effect(db: sqlite3.Connection, task: sqlite3.Row) -> None:
    """A finished day-2 task's effect (the guest's power state is left as it was)."""
    row = db.execute("SELECT params FROM task_params WHERE ref = ?", (task["ref"],)).fetchone()
    params = json.loads(row["params"]) if row else {}
    backend_id, action = task["backend_id"], task["action"]
    if action == "snapshot_create":
        disk = db.execute("SELECT disk_gib FROM guests WHERE backend_id = ?", (backend_id,)).fetchone()
        size = int((disk["disk_gib"] or 1) * 2**30 // 20) if disk else None
        db.execute(
            "INSERT OR IGNORE INTO snapshots (backend_id, ref, size_bytes, created_at) VALUES (?, ?, ?, ?)",
            (backend_id, params["ref"], size, time.time()),
        )
    elif action == "snapshot_delete":
        db.execute("DELETE FROM snapshots WHERE backend_id = ? AND ref = ?", (backend_id, params["ref"]))
    elif action == "rebuild":  # the disk is replaced once per rebuild key: a retry finds it done
        db.execute(
            "INSERT OR IGNORE INTO rebuilds (backend_id, idempotency_key, image_ref, at) VALUES (?, ?, ?, ?)",
            (backend_id, params["key"], params["image_ref"], time.time()),
        )
        db.execute("UPDATE guests SET image_ref = ? WHERE backend_id = ?", (params["image_ref"], backend_id))
    elif action == "resize":
        db.execute(
            "UPDATE guests SET vcpus = ?, memory_mib = ?, disk_gib = ? WHERE backend_id = ?",
            (params["vcpus"], params["memory_mib"], params["disk_gib"], backend_id),
        )


def task_result(db: sqlite3.Connection, task: sqlite3.Row) -> dict:
    """Facts a finished task reports for the write-back (a new snapshot's size)."""
    if task["action"] != "snapshot_create":
        return {}
    params = json.loads(db.execute("SELECT params FROM task_params WHERE ref = ?", (task["ref"],)).fetchone()[0])
    row = db.execute(
        "SELECT size_bytes FROM snapshots WHERE backend_id = ? AND ref = ?", (task["backend_id"], params["ref"])
    ).fetchone()
    return {"size_bytes": row["size_bytes"]} if row else {}


class SimulatorDay2:
    """Mixed into SimulatorDriver (which provides store, _maybe_fail, _count, _guest, _busy_task, _submit)."""

    def _day2(self, action: str, backend_id: str, params: dict, *, already_done) -> DriverTask:
        self._maybe_fail(action)
        with self.store.write() as db:
            self._count(db, action)
            self.store.settle(db, time.time())
            guest = self._guest(db, backend_id)
            if guest is None:
                message = f"Guest {backend_id} does not exist on {self.config.name}."
                raise PermanentDriverError(message, code="not_found")
            busy = self._busy_task(db, backend_id)
            if busy is not None and busy["action"] == action:
                return DriverTask(ref=busy["ref"], backend_id=backend_id, data={"action": action})
            if busy is not None:
                raise TransientDriverError(f"Guest {backend_id} is busy with {busy['action']}.", code="busy")
            if already_done(db, guest):
                return DriverTask(ref=f"noop-{action}", backend_id=backend_id, done=True, data={"action": action})
            task = self._submit(db, backend_id, action, params=params)
        return task

    def _snapshot(self, db: sqlite3.Connection, backend_id: str, ref: str) -> sqlite3.Row | None:
        return db.execute("SELECT * FROM snapshots WHERE backend_id = ? AND ref = ?", (backend_id, ref)).fetchone()

    def snapshot_create(self, backend_id: str, *, ref: str) -> DriverTask:
        return self._day2(
            "snapshot_create",
            backend_id,
            {"ref": ref},
            already_done=lambda db, guest: self._snapshot(db, backend_id, ref) is not None,
        )

    def snapshot_revert(self, backend_id: str, *, ref: str) -> DriverTask:
        def check(db, guest):
            if self._snapshot(db, backend_id, ref) is None:
                raise PermanentDriverError(f"Snapshot {ref} does not exist on {self.config.name}.", code="not_found")
            return False

        return self._day2("snapshot_revert", backend_id, {"ref": ref}, already_done=check)

    def snapshot_delete(self, backend_id: str, *, ref: str) -> DriverTask:
        return self._day2(
            "snapshot_delete",
            backend_id,
            {"ref": ref},
            already_done=lambda db, guest: self._snapshot(db, backend_id, ref) is None,
        )

    def snapshot_list(self, backend_id: str) -> list[SnapshotInfo]:
        self._maybe_fail("list")
        rows = self.store.read().execute(
            "SELECT ref, size_bytes FROM snapshots WHERE backend_id = ? ORDER BY created_at", (backend_id,)
        )
        return [SnapshotInfo(ref=row["ref"], size_bytes=row["size_bytes"]) for row in rows]

    def resize(self, backend_id: str, *, spec: ResizeSpec) -> DriverTask:
        def check(db, guest):
            if guest["disk_gib"] and spec.disk_gib < guest["disk_gib"]:
                raise PermanentDriverError(
                    f"Disks only grow: {guest['disk_gib']} GiB cannot become {spec.disk_gib} GiB.", code="disk_shrink"
                )
            return (guest["vcpus"], guest["memory_mib"], guest["disk_gib"]) == (
                spec.vcpus,
                spec.memory_mib,
                spec.disk_gib,
            )

        params = {"vcpus": spec.vcpus, "memory_mib": spec.memory_mib, "disk_gib": spec.disk_gib}
        return self._day2("resize", backend_id, params, already_done=check)

    def rebuild(self, backend_id: str, *, spec: VMSpec) -> DriverTask:
        if not spec.image_ref:
            raise PermanentDriverError("No image reference given for this hypervisor.", code="no_image")

        def check(db, guest):
            query = "SELECT 1 FROM rebuilds WHERE backend_id = ? AND idempotency_key = ?"
            done = db.execute(query, (backend_id, spec.idempotency_key)).fetchone()
            return done is not None

        params = {"key": spec.idempotency_key, "image_ref": spec.image_ref}
        return self._day2("rebuild", backend_id, params, already_done=check)

    def rebuild_counts(self, backend_id: str) -> dict[str, int]:
        """Disks written per rebuild key (tests: a crash never makes two)."""
        rows = self.store.read().execute(
            "SELECT idempotency_key, COUNT(*) AS n FROM rebuilds WHERE backend_id = ? GROUP BY idempotency_key",
            (backend_id,),
        )
        return {row["idempotency_key"]: row["n"] for row in rows}

    def sizes(self, backend_id: str) -> dict | None:
        """The guest's vCPU / memory / disk as the simulator holds them (tests, chaos invariants)."""
        row = self._guest(self.store.read(), backend_id)
        return {"vcpus": row["vcpus"], "memory_mib": row["memory_mib"], "disk_gib": row["disk_gib"]} if row else None
