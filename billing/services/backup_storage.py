"""Backup storage: metered per closed month in GiB-hours at ``backup_price_per_gib_hour`` (0 by
default: nothing), charged and invoiced exactly like snapshot storage (snapshot_storage.py,
whose code this uses): one ``BackupStorageRecord`` per VM and month, one ``UsageCharge`` per
month through bandwidth.py's ``records_charge_locked``, one invoice line per VM and month
("Backup storage of web-1, May 2025", GiB-h).

A backup is stored from its ``completed_at`` (the hypervisor finished the copy and reported its
size) until its confirmed delete (``deleted_at``), reconciliation finding it gone
(``missing_since``) or the VM's deletion (its copies stay in backup storage, but nobody can
act on them any more: not billed). Sizes come from the drivers' backup results: the simulator,
libvirt (the copy's allocation), Proxmox (the vzdump archive's size) and OpenStack (the backup
image's size) report one; a backup without a size is not billed.
"""

from __future__ import annotations

from functools import partial

from compute.models import Backup

from ..models import BackupStorageRecord
from .snapshot_storage import StorageKind, storage_charge_locked, storage_charge_pending, storage_lines, storage_meter

BACKUPS = StorageKind(
    label="Backup storage",
    source=Backup,
    start="completed_at",
    record=BackupStorageRecord,
    price="backup_price_per_gib_hour",
    charge_kind="backups",
)

backup_storage_meter = partial(storage_meter, BACKUPS)
backup_storage_charge_locked = partial(storage_charge_locked, BACKUPS)
backup_storage_charge_pending = partial(storage_charge_pending, BACKUPS)
backup_storage_lines = partial(storage_lines, BACKUPS)
