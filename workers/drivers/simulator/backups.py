"""The simulator's backups: a copy of the guest's disk kept in a ``backups`` table apart from
the guest (it outlives the guest, like a backup storage), restored and deleted by tasks that
finish ``latency_backup_create`` / ``latency_backup_restore`` / ``latency_backup_delete``
seconds later, with failures injected like every other action (``fail_actions``,
``transient_failures_first`` …). A restore puts the backed-up disk (its image and size) back
and is counted in ``restores`` (tests read ``restore_log``).
"""

from __future__ import annotations

import json
import sqlite3
import time

from ..base import BackupInfo, DriverTask, PermanentDriverError

SCHEMA = """
CREATE TABLE IF NOT EXISTS backups (
    backend_id TEXT NOT NULL,
    ref TEXT NOT NULL,
    image_ref TEXT,
    disk_gib INTEGER,
    size_bytes INTEGER,
    created_at REAL NOT NULL,
    PRIMARY KEY (backend_id, ref)
);
CREATE TABLE IF NOT EXISTS restores (backend_id TEXT NOT NULL, ref TEXT NOT NULL, at REAL NOT NULL);
"""

ACTIONS = ("backup_create", "backup_restore", "backup_delete")


def _params(db: sqlite3.Connection, task: sqlite3.Row) -> dict:
    row = db.execute("SELECT params FROM task_params WHERE ref = ?", (task["ref"],)).fetchone()
    return json.loads(row["params"]) if row else {}


def apply_effect(db: sqlite3.Connection, task: sqlite3.Row) -> None:
    """A finished backup task's effect (the guest's power state is left as it was)."""
    backend_id, action, ref = task["backend_id"], task["action"], _params(db, task)["ref"]
    if action == "backup_create":
        guest = db.execute("SELECT image_ref, disk_gib FROM guests WHERE backend_id = ?", (backend_id,)).fetchone()
        if guest is None:
            return
        size = int((guest["disk_gib"] or 1) * 2**30 // 10)
        db.execute(
            "INSERT OR IGNORE INTO backups (backend_id, ref, image_ref, disk_gib, size_bytes, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (backend_id, ref, guest["image_ref"], guest["disk_gib"], size, time.time()),
        )
    elif action == "backup_restore":
        backup = db.execute("SELECT * FROM backups WHERE backend_id = ? AND ref = ?", (backend_id, ref)).fetchone()
        if backup is not None:
            db.execute("UPDATE guests SET image_ref = ? WHERE backend_id = ?", (backup["image_ref"], backend_id))
            db.execute("INSERT INTO restores (backend_id, ref, at) VALUES (?, ?, ?)", (backend_id, ref, time.time()))
    elif action == "backup_delete":
        db.execute("DELETE FROM backups WHERE backend_id = ? AND ref = ?", (backend_id, ref))


def task_result(db: sqlite3.Connection, task: sqlite3.Row) -> dict:
    """A finished backup's size, for the write-back."""
    if task["action"] != "backup_create":
        return {}
    query = "SELECT size_bytes FROM backups WHERE backend_id = ? AND ref = ?"
    row = db.execute(query, (task["backend_id"], _params(db, task)["ref"])).fetchone()
    return {"size_bytes": row["size_bytes"]} if row else {}


class SimulatorBackups:
    """Mixed into SimulatorDriver (uses its store, _maybe_fail and the day-2 task helper ``_day2``)."""

    def _backup(self, db: sqlite3.Connection, backend_id: str, ref: str) -> sqlite3.Row | None:
        return db.execute("SELECT * FROM backups WHERE backend_id = ? AND ref = ?", (backend_id, ref)).fetchone()

    def backup_create(self, backend_id: str, *, ref: str) -> DriverTask:
        return self._day2(
            "backup_create",
            backend_id,
            {"ref": ref},
            already_done=lambda db, guest: self._backup(db, backend_id, ref) is not None,
        )

    def backup_restore(self, backend_id: str, *, ref: str) -> DriverTask:
        def check(db, guest):
            if self._backup(db, backend_id, ref) is None:
                raise PermanentDriverError(f"Backup {ref} does not exist on {self.config.name}.", code="not_found")
            return False

        return self._day2("backup_restore", backend_id, {"ref": ref}, already_done=check)

    def backup_delete(self, backend_id: str, *, ref: str) -> DriverTask:
        self._maybe_fail("backup_delete")
        with self.store.write() as db:
            self.store.settle(db, time.time())
            if self._backup(db, backend_id, ref) is None:  # gone already (or its guest is gone): done
                return DriverTask(ref="noop-backup_delete", backend_id=backend_id, done=True)
        return self._day2("backup_delete", backend_id, {"ref": ref}, already_done=lambda db, guest: False)

    def backup_list(self, backend_id: str) -> list[BackupInfo]:
        self._maybe_fail("list")
        rows = self.store.read().execute(
            "SELECT ref, size_bytes FROM backups WHERE backend_id = ? ORDER BY created_at", (backend_id,)
        )
        return [BackupInfo(ref=row["ref"], size_bytes=row["size_bytes"]) for row in rows]

    def restore_log(self, backend_id: str) -> list[str]:
        """Backups restored onto the guest, oldest first (tests)."""
        rows = self.store.read().execute("SELECT ref FROM restores WHERE backend_id = ? ORDER BY at", (backend_id,))
        return [row["ref"] for row in rows]
