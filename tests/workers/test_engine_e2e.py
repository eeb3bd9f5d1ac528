"""The operation engine end to end: API → Operation → Redis → real worker → simulator → write-back."""

import threading

import pytest
from django.db import connection

from compute.choices import OperationState, PowerState, VMStatus
from compute.models import Operation, VirtualMachine, VMStatusEvent
from tests.fixtures.compute import wait_operation, wait_vm_idle
from workers.drivers.simulator import store_for

pytestmark = pytest.mark.worker


def _request_vm(api, project, plan, image, simulator, name="web-1"):
    response = api.post(
        "/api/v1/vm-requests/",
        {"project": project.slug, "plan": plan.pk, "image": image.pk, "hypervisor": simulator.pk, "name": name},
        format="json",
    )
    assert response.status_code == 201, response.json()
    return response.json()


def _act(api, vm_id, action):
    if action == "delete":
        response = api.delete(f"/api/v1/virtual-machines/{vm_id}/")
    else:
        response = api.post(f"/api/v1/virtual-machines/{vm_id}/{action}/")
    assert response.status_code == 202, response.json()
    body = response.json()
    assert response["Location"] == body["operation"]["url"]
    return body["operation"]


def test_full_lifecycle_through_the_api(live_worker, api, project, plan, image, simulator):
    # Given a plan that needs no approval
    request = _request_vm(api, project, plan, image, simulator)
    assert request["status"] == "approved" and request["vm"]
    vm_id = request["vm"]
    create = Operation.objects.get(vm_id=vm_id, action="create")

    # When the worker builds it, then it is active and running with an id and an IP
    assert wait_operation(create.pk).state == OperationState.SUCCEEDED
    vm = VirtualMachine.objects.get(pk=vm_id)
    assert (vm.status, vm.power_state, vm.task_state) == (VMStatus.ACTIVE, PowerState.RUNNING, None)
    assert vm.backend_id.startswith("sim-") and vm.ip_addresses

    # stop → start → reboot → delete, each a 202 with an operation that ends succeeded
    for action, status, power in [
        ("stop", VMStatus.STOPPED, PowerState.STOPPED),
        ("start", VMStatus.ACTIVE, PowerState.RUNNING),
        ("reboot", VMStatus.ACTIVE, PowerState.RUNNING),
        ("delete", VMStatus.DELETED, PowerState.STOPPED),
    ]:
        operation = _act(api, vm_id, action)
        assert operation["state"] == "pending"
        finished = wait_operation(operation["id"])
        assert finished.state == OperationState.SUCCEEDED, finished.error_message
        assert finished.task_ref.startswith("simtask-")
        vm.refresh_from_db()
        assert (vm.status, vm.power_state, vm.task_state) == (status, power, None), action

    # The hypervisor agrees, the timeline is recorded, the quota is given back
    assert store_for(simulator.connection["state_path"]).guests() == []
    statuses = list(VMStatusEvent.objects.filter(vm_id=vm_id).values_list("status", flat=True))
    assert statuses == ["building", "active", "stopped", "active", "deleted"]
    assert project.quota.used_vms == 0

    # The operation is readable through the API with its hypervisor task reference
    body = api.get(f"/api/v1/operations/{finished.pk}/").json()
    assert body["state"] == "succeeded" and body["task_ref"] == finished.task_ref


def test_action_while_another_runs_is_409(live_worker, api, project, plan, image, simulator):
    simulator.connection["latency"] = 2
    simulator.save()
    vm_id = _request_vm(api, project, plan, image, simulator)["vm"]
    # While the create is still running
    response = api.post(f"/api/v1/virtual-machines/{vm_id}/stop/")
    assert response.status_code == 409
    assert "busy" in response.json()["error"]["message"]
    wait_operation(Operation.objects.get(vm_id=vm_id, action="create").pk)


def test_two_identical_actions_racing_make_one_operation(live_worker, api, user, project, plan, image, simulator):
    vm_id = _request_vm(api, project, plan, image, simulator)["vm"]
    wait_vm_idle(vm_id)
    barrier = threading.Barrier(2)
    codes = []

    def stop():
        from rest_framework.test import APIClient

        client = APIClient()
        client.force_login(user)
        barrier.wait()
        codes.append(client.post(f"/api/v1/virtual-machines/{vm_id}/stop/").status_code)
        connection.close()

    threads = [threading.Thread(target=stop) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(codes) == [202, 409]
    assert Operation.objects.filter(vm_id=vm_id, action="stop").count() == 1
    wait_vm_idle(vm_id)


def test_stopping_a_stopped_vm_is_409_with_a_clear_message(live_worker, api, project, plan, image, simulator):
    vm_id = _request_vm(api, project, plan, image, simulator)["vm"]
    wait_vm_idle(vm_id)
    wait_operation(_act(api, vm_id, "stop")["id"])
    response = api.post(f"/api/v1/virtual-machines/{vm_id}/stop/")
    assert response.status_code == 409
    assert response.json()["error"]["message"] == "Cannot stop web-1: it is stopped."
