"""Day-2 actions end to end: API → Operation → Redis → real worker → simulator → write-back
(snapshots: create, list, revert, delete, limit; resize: quota, plan, timeline, refusals)."""

import pytest

from audit.models import AuditEvent
from compute.choices import OperationState, PowerState, SnapshotState, VMStatus
from compute.models import Operation, Snapshot, VirtualMachine, VMStatusEvent
from tests.fixtures.accounts import enrol
from tests.fixtures.compute import wait_operation
from tests.fixtures.factories import ImageFactory, PlanFactory
from workers import engine
from workers.drivers.simulator import store_for
from workers.drivers.simulator.driver import SimulatorDriver
from workers.engine import driver_for

pytestmark = pytest.mark.worker


def _vm(api, project, plan, image, simulator, name="web-1"):
    body = api.post(
        "/api/v1/vm-requests/",
        {"project": project.slug, "plan": plan.pk, "image": image.pk, "hypervisor": simulator.pk, "name": name},
        format="json",
    ).json()
    create = Operation.objects.get(vm_id=body["vm"], action="create")
    assert wait_operation(create.pk).state == OperationState.SUCCEEDED
    return VirtualMachine.objects.get(pk=body["vm"])


def _accepted(response):
    assert response.status_code == 202, response.json()
    assert response["Location"] == response.json()["operation"]["url"]
    finished = wait_operation(response.json()["operation"]["id"])
    assert finished.state == OperationState.SUCCEEDED, finished.error_message
    return finished


def test_snapshot_create_list_revert_delete(live_worker, api, project, plan, image, simulator):
    plan.max_snapshots = 2
    plan.save()
    vm = _vm(api, project, plan, image, simulator)
    base = f"/api/v1/virtual-machines/{vm.pk}/snapshots/"

    # Given two snapshots taken through the API
    for name in ("before-upgrade", "second"):
        op = _accepted(api.post(base, {"name": name}, format="json"))
        assert op.action == "snapshot_create"
    listed = api.get(base).json()
    assert [(s["name"], s["state"]) for s in listed] == [("second", "available"), ("before-upgrade", "available")]
    assert all(s["size_bytes"] for s in listed)
    snapshots = {s.name: s for s in Snapshot.objects.filter(vm=vm)}
    sim = driver_for(simulator)
    assert sorted(s.ref for s in sim.snapshot_list(vm.backend_id)) == sorted(s.backend_ref for s in snapshots.values())

    # When a third is asked for, the plan's limit refuses it (409) and writes nothing
    response = api.post(base, {"name": "third"}, format="json")
    assert response.status_code == 409 and "the most its plan" in response.json()["error"]["message"]
    assert Snapshot.objects.filter(vm=vm).count() == 2

    # Revert keeps the VM running; delete removes it on the hypervisor and frees a slot
    _accepted(api.post(f"{base}{snapshots['before-upgrade'].pk}/revert/"))
    vm.refresh_from_db()
    assert (vm.status, vm.power_state, vm.task_state) == (VMStatus.ACTIVE, PowerState.RUNNING, None)
    _accepted(api.delete(f"{base}{snapshots['second'].pk}/"))
    assert Snapshot.objects.get(pk=snapshots["second"].pk).state == SnapshotState.DELETED
    assert [s.ref for s in sim.snapshot_list(vm.backend_id)] == [snapshots["before-upgrade"].backend_ref]
    assert [s["name"] for s in api.get(base).json()] == ["before-upgrade"]
    _accepted(api.post(base, {"name": "third"}, format="json"))


def test_snapshot_refusals_are_clear_4xx(live_worker, api, project, plan, image, simulator):
    vm = _vm(api, project, plan, image, simulator)
    base = f"/api/v1/virtual-machines/{vm.pk}/snapshots/"
    assert api.post(base, {"name": "Bad Name!"}, format="json").status_code == 400
    assert api.post(base, {}, format="json").status_code == 400
    assert api.post(f"{base}999999/revert/").status_code == 404
    # While one snapshot is being taken, a resize is a 409 naming what runs
    simulator.connection["latency"] = 3
    simulator.save()
    response = api.post(base, {"name": "slow"}, format="json")
    assert response.status_code == 202
    bigger = PlanFactory(vcpus=2, memory_mib=2048, disk_gib=30)
    refused = api.post(f"/api/v1/virtual-machines/{vm.pk}/resize/", {"plan": bigger.pk}, format="json")
    assert refused.status_code == 409
    assert refused.json()["error"]["message"] == (
        "Cannot resize web-1: it is busy (snapshot in progress); wait for it to finish."
    )
    wait_operation(response.json()["operation"]["id"])


def test_resize_moves_plan_quota_and_timeline(live_worker, api, project, plan, image, simulator):
    vm = _vm(api, project, plan, image, simulator)
    bigger = PlanFactory(vcpus=2, memory_mib=2048, disk_gib=30, price_hourly_running="3.0000")
    url = f"/api/v1/virtual-machines/{vm.pk}/resize/"

    # The preview says a running VM is restarted for a vCPU/memory change on the simulator
    preview = api.get(url, {"plan": bigger.pk}).json()
    assert preview == {"allowed": True, "reason": "", "changed": ["disk", "memory", "vcpus"], "restart": True}

    # When resized, the quota holds the new plan, the hypervisor runs it and the timeline says when
    _accepted(api.post(url, {"plan": bigger.pk}, format="json"))
    vm.refresh_from_db()
    project.quota.refresh_from_db()
    assert vm.plan_id == bigger.pk and vm.status == VMStatus.ACTIVE
    assert (project.quota.used_vcpus, project.quota.used_memory_mib, project.quota.used_disk_gib) == (2, 2048, 30)
    assert driver_for(simulator).sizes(vm.backend_id) == {"vcpus": 2, "memory_mib": 2048, "disk_gib": 30}
    last = VMStatusEvent.objects.filter(vm=vm).last()
    assert (last.plan_id, last.status, last.operation.action) == (bigger.pk, VMStatus.ACTIVE, "resize")

    # A smaller disk is refused with a clear message, nothing reserved
    smaller = PlanFactory(vcpus=1, memory_mib=1024, disk_gib=20)
    refused = api.post(url, {"plan": smaller.pk}, format="json")
    assert refused.status_code == 409 and "disks can only grow" in refused.json()["error"]["message"]
    project.quota.refresh_from_db()
    assert project.quota.used_vcpus == 2


def test_failed_resize_leaves_old_plan_and_quota(live_worker, api, project, plan, image, simulator):
    vm = _vm(api, project, plan, image, simulator)
    simulator.connection["permanent_failures_first"] = {"resize": 1}
    simulator.save()
    bigger = PlanFactory(vcpus=4, memory_mib=4096, disk_gib=40)
    response = api.post(f"/api/v1/virtual-machines/{vm.pk}/resize/", {"plan": bigger.pk}, format="json")
    assert response.status_code == 202
    project.quota.refresh_from_db()
    assert project.quota.used_vcpus == 4  # reserved for the increase while it runs
    assert wait_operation(response.json()["operation"]["id"]).state == OperationState.FAILED
    vm.refresh_from_db()
    project.quota.refresh_from_db()
    assert vm.plan_id == plan.pk and vm.status == VMStatus.ACTIVE and vm.task_state is None
    assert (project.quota.used_vcpus, project.quota.used_memory_mib, project.quota.used_disk_gib) == (1, 1024, 20)
    assert store_for(simulator.connection["state_path"]).guests()[0]["vcpus"] == 1


def test_simulator_declares_what_it_does():
    assert SimulatorDriver.capabilities >= {"snapshots", "resize"}


def test_rebuild_through_the_api_keeps_identity(live_worker, api, project, plan, image, simulator):
    vm = _vm(api, project, plan, image, simulator)
    before = (vm.backend_id, list(vm.ip_addresses), vm.plan_id)
    other = ImageFactory()
    other.references.create(hypervisor=simulator, ref="tmpl-ubuntu-24")
    url = f"/api/v1/virtual-machines/{vm.pk}/rebuild/"
    assert api.post(url, {"image": 999999}, format="json").status_code == 400

    op = _accepted(api.post(url, {"image": other.pk, "user_data": "#cloud-config\n"}, format="json"))
    vm.refresh_from_db()
    assert (vm.backend_id, list(vm.ip_addresses), vm.plan_id) == before
    assert (vm.image_id, vm.user_data, vm.status) == (other.pk, "#cloud-config\n", VMStatus.ACTIVE)
    assert driver_for(simulator).rebuild_counts(vm.backend_id) == {str(op.idempotency_key): 1}


def test_rebuild_needs_a_current_code_from_a_2fa_user(api, user, project, plan, image, idle_vm):
    vm = idle_vm(VMStatus.ACTIVE)
    enrol(user)
    response = api.post(f"/api/v1/virtual-machines/{vm.pk}/rebuild/", {"image": image.pk}, format="json")
    assert response.status_code == 403 and response.json()["error"]["code"] == "otp_required"
    assert not Operation.objects.filter(vm=vm, action="rebuild").exists()


def test_reconciliation_marks_missing_and_reports_unknown_snapshots(live_worker, api, project, plan, image, simulator):
    vm = _vm(api, project, plan, image, simulator)
    base = f"/api/v1/virtual-machines/{vm.pk}/snapshots/"
    _accepted(api.post(base, {"name": "kept"}, format="json"))
    _accepted(api.post(base, {"name": "vanishes"}, format="json"))
    vanishes = Snapshot.objects.get(vm=vm, name="vanishes")

    # Behind our back: one snapshot removed, another made on the hypervisor
    store = store_for(simulator.connection["state_path"])
    with store.write() as db:
        db.execute("DELETE FROM snapshots WHERE ref = ?", (vanishes.backend_ref,))
        db.execute(
            "INSERT INTO snapshots (backend_id, ref, size_bytes, created_at) VALUES (?, 'by-hand', 1, 0)",
            (vm.backend_id,),
        )

    report = engine.reconcile_hypervisor(simulator)
    assert (report["snapshots_missing"], report["snapshots_unknown"]) == (1, 1)
    states = dict(Snapshot.objects.filter(vm=vm).values_list("name", "state"))
    assert states == {"kept": SnapshotState.AVAILABLE, "vanishes": SnapshotState.MISSING}
    simulator.refresh_from_db()
    assert simulator.drift["unknown_snapshots"] == {vm.backend_id: ["by-hand"]}
    assert AuditEvent.objects.filter(action="drift.detected", details__kind="snapshot_missing").count() == 1
    # A second pass reports nothing new and audits nothing again
    report = engine.reconcile_hypervisor(simulator)
    assert (report["snapshots_missing"], report["snapshots_unknown"]) == (0, 1)
    assert AuditEvent.objects.filter(action="drift.detected", details__kind="unknown_snapshot").count() == 1
