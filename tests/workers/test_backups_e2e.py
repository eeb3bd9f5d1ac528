"""Backups end to end on the simulator: API → Operation → Redis → real worker → simulator →
write-back (backup now, list, restore, delete, limits, failures), schedules run by the beat
task's service (one operation per backup, skips reported), retention deleting through
operations, and reconciliation of backup storage."""

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from audit.models import AuditEvent
from compute import services
from compute.choices import BackupKind, BackupState, OperationState, PowerState, VMStatus
from compute.models import Backup, BackupSchedule, Operation
from tests.fixtures.accounts import enrol
from tests.fixtures.compute import accepted_and_succeeded as _accepted
from tests.fixtures.compute import vm_via_api as _vm
from tests.fixtures.compute import wait_operation
from tests.fixtures.factories import PlanFactory
from tests.fixtures.notifications import relay_here_and_send_emails
from workers import engine
from workers.drivers.simulator import store_for
from workers.engine import driver_for

pytestmark = pytest.mark.worker


def test_backup_now_list_restore_delete(live_worker, api, project, plan, image, simulator):
    plan.max_backups = 2
    plan.save()
    vm = _vm(api, project, plan, image, simulator)
    base = f"/api/v1/virtual-machines/{vm.pk}/backups/"
    sim = driver_for(simulator)

    # Given two backups taken through the API
    first = _accepted(api.post(base))
    second = _accepted(api.post(base))
    assert (first.action, second.action) == ("backup_create", "backup_create")
    listed = api.get(base).json()
    assert [b["state"] for b in listed] == ["available", "available"]
    assert all(b["size_bytes"] and b["completed_at"] and b["kind"] == "manual" for b in listed)
    backups = list(Backup.objects.filter(vm=vm).order_by("id"))
    assert sorted(b.ref for b in sim.backup_list(vm.backend_id)) == sorted(b.backend_ref for b in backups)

    # When a third is asked for, the plan's limit refuses it (409) and writes nothing
    response = api.post(base)
    assert response.status_code == 409 and "the most its plan" in response.json()["error"]["message"]
    assert Backup.objects.filter(vm=vm).count() == 2

    # Restore puts the first backup's disk back and keeps the VM running
    _accepted(api.post(f"{base}{backups[0].pk}/restore/"))
    vm.refresh_from_db()
    assert (vm.status, vm.power_state, vm.task_state) == (VMStatus.ACTIVE, PowerState.RUNNING, None)
    assert sim.restore_log(vm.backend_id) == [backups[0].backend_ref]

    # Delete removes it from backup storage and frees a slot
    _accepted(api.delete(f"{base}{backups[1].pk}/"))
    assert Backup.objects.get(pk=backups[1].pk).state == BackupState.DELETED
    assert [b.ref for b in sim.backup_list(vm.backend_id)] == [backups[0].backend_ref]
    assert [b["id"] for b in api.get(base).json()] == [backups[0].pk]
    _accepted(api.post(base))
    # Every step is audited with its operation
    actions = set(AuditEvent.objects.filter(target_id=str(vm.pk)).values_list("action", flat=True))
    assert {"vm.backup_create.requested", "vm.backup_create.succeeded", "vm.backup_restore.succeeded"} <= actions
    assert "vm.backup_delete.succeeded" in actions


def test_resize_while_a_backup_runs_is_a_clear_409(live_worker, api, project, plan, image, simulator):
    vm = _vm(api, project, plan, image, simulator)
    simulator.connection["latency_backup_create"] = 3
    simulator.save()
    response = api.post(f"/api/v1/virtual-machines/{vm.pk}/backups/")
    assert response.status_code == 202
    bigger = PlanFactory(vcpus=2, memory_mib=2048, disk_gib=30)
    refused = api.post(f"/api/v1/virtual-machines/{vm.pk}/resize/", {"plan": bigger.pk}, format="json")
    assert refused.status_code == 409
    assert refused.json()["error"]["message"] == (
        "Cannot resize web-1: it is busy (backup in progress); wait for it to finish."
    )
    # A second backup at the same time is refused the same way; the first finishes
    assert api.post(f"/api/v1/virtual-machines/{vm.pk}/backups/").status_code == 409
    assert wait_operation(response.json()["operation"]["id"]).state == OperationState.SUCCEEDED


def test_failed_backup_is_marked_and_leaves_the_vm_alone(live_worker, api, project, plan, image, simulator):
    vm = _vm(api, project, plan, image, simulator)
    simulator.connection["permanent_failures_first"] = {"backup_create": 1}
    simulator.connection["transient_failures_first"] = {"backup_restore": 1}
    simulator.save()
    response = api.post(f"/api/v1/virtual-machines/{vm.pk}/backups/")
    assert wait_operation(response.json()["operation"]["id"]).state == OperationState.FAILED
    failed = Backup.objects.get(vm=vm)
    vm.refresh_from_db()
    assert failed.state == BackupState.ERROR and (vm.status, vm.task_state) == (VMStatus.ACTIVE, None)
    assert driver_for(simulator).backup_list(vm.backend_id) == []
    # and the VM's owner is told (notifications' backup.failed)
    [told] = [n for n in relay_here_and_send_emails() if n.event_type == "backup.failed"]
    assert told.user_id == vm.owner_id and told.title == "Backup of VM web-1 failed"

    # The next backup works; a restore that meets a transient error is retried by the engine
    _accepted(api.post(f"/api/v1/virtual-machines/{vm.pk}/backups/"))
    good = Backup.objects.get(vm=vm, state=BackupState.AVAILABLE)
    restore = _accepted(api.post(f"/api/v1/virtual-machines/{vm.pk}/backups/{good.pk}/restore/"))
    assert restore.attempts == 2
    # An error'd backup can be deleted (clean-up of a partial copy); restoring it is refused
    assert api.post(f"/api/v1/virtual-machines/{vm.pk}/backups/{failed.pk}/restore/").status_code == 409
    _accepted(api.delete(f"/api/v1/virtual-machines/{vm.pk}/backups/{failed.pk}/"))


def test_restore_needs_a_current_code_from_a_2fa_user(api, user, project, plan, image, idle_vm):
    vm = idle_vm(VMStatus.ACTIVE)
    backup = Backup.objects.create(vm=vm, state=BackupState.AVAILABLE, backend_ref="cp-backup-x")
    enrol(user)
    response = api.post(f"/api/v1/virtual-machines/{vm.pk}/backups/{backup.pk}/restore/")
    assert response.status_code == 403 and response.json()["error"]["code"] == "otp_required"
    assert not Operation.objects.filter(vm=vm, action="backup_restore").exists()


def test_schedule_validation(api, project, plan, image, idle_vm):
    vm = idle_vm(VMStatus.ACTIVE)
    url = f"/api/v1/virtual-machines/{vm.pk}/backup-schedule/"
    assert api.get(url).status_code == 404
    too_many = api.put(url, {"frequency": "daily", "window_start": "02:00", "retention": 99}, format="json")
    assert too_many.status_code == 409 and "retention" in too_many.json()["error"]["fields"]  # the plan decides
    no_day = api.put(url, {"frequency": "weekly", "window_start": "02:00", "retention": 2}, format="json")
    assert no_day.status_code == 400 and "weekday" in no_day.json()["error"]["fields"]
    bad_zone = api.put(
        url, {"frequency": "daily", "window_start": "02:00", "retention": 2, "timezone": "Mars/Base"}, format="json"
    )
    assert bad_zone.status_code == 400 and "timezone" in bad_zone.json()["error"]["fields"]
    assert not BackupSchedule.objects.exists()
    ok = api.put(
        url, {"frequency": "weekly", "weekday": 6, "window_start": "23:30", "retention": 2}, format="json"
    ).json()
    got = (ok["frequency"], ok["weekday"], ok["window_start"], ok["timezone"])
    assert got == ("weekly", 6, "23:30", "Asia/Kolkata")
    assert api.delete(url).status_code == 204 and not BackupSchedule.objects.exists()


def test_window_rule_in_the_schedules_time_zone(idle_vm):
    vm = idle_vm(VMStatus.ACTIVE)
    ist = ZoneInfo("Asia/Kolkata")
    schedule = BackupSchedule(
        vm=vm, frequency="weekly", weekday=6, window_start=time(23, 30), window_minutes=60, timezone="Asia/Kolkata"
    )
    sunday_late = datetime(2026, 12, 6, 23, 45, tzinfo=ist)  # a Sunday
    assert services.backup_window_start(schedule=schedule, now=sunday_late) == datetime(
        2026, 12, 6, 18, 0, tzinfo=ZoneInfo("UTC")
    )
    # The window runs past midnight into Monday; it is still Sunday's window
    assert services.backup_window_start(schedule=schedule, now=sunday_late + timedelta(minutes=30)) is not None
    assert services.backup_window_start(schedule=schedule, now=sunday_late + timedelta(minutes=50)) is None
    assert services.backup_window_start(schedule=schedule, now=sunday_late - timedelta(days=1)) is None


def test_schedule_runs_once_per_window_skips_busy_vm_and_retention_deletes(
    live_worker, api, user, project, plan, image, simulator
):
    vm = _vm(api, project, plan, image, simulator)
    now = datetime.now(ZoneInfo("Asia/Kolkata"))
    response = api.put(
        f"/api/v1/virtual-machines/{vm.pk}/backup-schedule/",
        {"frequency": "daily", "window_start": (now - timedelta(minutes=5)).strftime("%H:%M"), "retention": 1},
        format="json",
    )
    assert response.status_code == 200, response.json()

    # When beat's pass runs while the VM is busy, the backup is skipped, reported and audited once
    simulator.connection["latency_stop"] = 2
    simulator.save()
    stop = services.vm_action(vm=vm, action="stop", user=user)
    for _ in range(2):
        report = services.backup_schedules_run()
        assert (report["started"], report["skipped"]) == (0, 1)
    schedule = BackupSchedule.objects.get(vm=vm)
    assert "busy (stop in progress)" in schedule.last_skip_reason
    assert AuditEvent.objects.filter(action="vm.backup_create.skipped").count() == 1
    wait_operation(stop.pk)

    # Then the next pass in the window starts one backup operation; a later pass starts no second
    assert services.backup_schedules_run()["started"] == 1
    assert services.backup_schedules_run()["started"] == 0
    first = Operation.objects.get(vm=vm, action="backup_create")
    assert wait_operation(first.pk).state == OperationState.SUCCEEDED
    assert Backup.objects.get(vm=vm).kind == BackupKind.SCHEDULED

    # A window later (next day) another is taken; retention (1) deletes the oldest through an operation
    BackupSchedule.objects.filter(vm=vm).update(last_run_at=datetime.now(ZoneInfo("UTC")) - timedelta(days=1))
    assert services.backup_schedules_run()["started"] == 1
    second = Operation.objects.filter(vm=vm, action="backup_create").latest("id")
    assert wait_operation(second.pk).state == OperationState.SUCCEEDED
    assert services.backup_retention_enforce() == 1
    delete = Operation.objects.get(vm=vm, action="backup_delete")
    assert delete.requested_by is None and wait_operation(delete.pk).state == OperationState.SUCCEEDED
    states = list(Backup.objects.filter(vm=vm).order_by("id").values_list("state", flat=True))
    assert states == [BackupState.DELETED, BackupState.AVAILABLE]
    assert len(driver_for(simulator).backup_list(vm.backend_id)) == 1
    assert services.backup_retention_enforce() == 0


def test_reconciliation_marks_missing_and_reports_unknown_backups(live_worker, api, project, plan, image, simulator):
    vm = _vm(api, project, plan, image, simulator)
    base = f"/api/v1/virtual-machines/{vm.pk}/backups/"
    _accepted(api.post(base))
    _accepted(api.post(base))
    kept, vanishes = Backup.objects.filter(vm=vm).order_by("id")

    # Behind our back: one backup removed from backup storage, another made by hand
    store = store_for(simulator.connection["state_path"])
    with store.write() as db:
        db.execute("DELETE FROM backups WHERE ref = ?", (vanishes.backend_ref,))
        db.execute(
            "INSERT INTO backups (backend_id, ref, size_bytes, created_at) VALUES (?, 'by-hand', 1, 0)",
            (vm.backend_id,),
        )

    report = engine.reconcile_hypervisor(simulator)
    assert (report["backups_missing"], report["backups_unknown"]) == (1, 1)
    states = dict(Backup.objects.filter(vm=vm).values_list("pk", "state"))
    assert states == {kept.pk: BackupState.AVAILABLE, vanishes.pk: BackupState.MISSING}
    simulator.refresh_from_db()
    assert simulator.drift["unknown_backups"] == {vm.backend_id: ["by-hand"]}
    assert AuditEvent.objects.filter(action="drift.detected", details__kind="backup_missing").count() == 1
    report = engine.reconcile_hypervisor(simulator)
    assert (report["backups_missing"], report["backups_unknown"]) == (0, 1)
    assert AuditEvent.objects.filter(action="drift.detected", details__kind="unknown_backup").count() == 1
