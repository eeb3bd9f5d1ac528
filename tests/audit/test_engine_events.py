"""An operation driven by the real worker leaves the expected, verifiable trail."""

import pytest

from audit import selectors
from audit.models import AuditEvent
from compute.choices import OperationState
from compute.models import Operation
from tests.fixtures.compute import wait_operation

pytestmark = pytest.mark.worker


def test_a_vm_built_and_stopped_by_the_worker_is_on_the_record(live_worker, api, user, project, plan, image, simulator):
    # Given a VM requested through the API
    response = api.post(
        "/api/v1/vm-requests/",
        {"project": project.slug, "plan": plan.pk, "image": image.pk, "hypervisor": simulator.pk, "name": "audited"},
        format="json",
    )
    assert response.status_code == 201, response.json()
    vm_id = response.json()["vm"]
    create = Operation.objects.get(vm_id=vm_id, action="create")

    # When the worker builds it and then stops it
    assert wait_operation(create.pk).state == OperationState.SUCCEEDED
    stop = api.post(f"/api/v1/virtual-machines/{vm_id}/stop/").json()["operation"]
    assert wait_operation(stop["id"]).state == OperationState.SUCCEEDED

    # Then the user's requests and the worker's results are recorded, in order, for the project
    events = list(AuditEvent.objects.filter(project=project).order_by("id"))
    trail = [
        (e.action, e.actor if e.actor_user_id is None else "user")
        for e in events
        if e.action not in ("project.created", "billing.profile_updated", "wallet.topup")  # the fixture's set-up
    ]
    assert trail[:3] == [
        ("request.created", "user"),
        ("request.approved", "system:auto-approve"),  # the plan needs no approval
        ("vm.create.requested", "user"),
    ]
    assert ("vm.stop.requested", "user") in trail
    worker_actions = [a for a, actor in trail if actor.startswith("worker:")]
    # the claim (pending → running) writes no event of its own (issue 25); the result names
    # the worker and the attempt
    assert "operation.state_changed" not in worker_actions
    assert worker_actions.index("vm.create.succeeded") < worker_actions.index("vm.stop.succeeded")
    succeeded = next(e for e in events if e.action == "vm.create.succeeded")
    assert succeeded.target_type == "compute.virtualmachine" and succeeded.target_id == str(vm_id)
    assert succeeded.details["task_ref"].startswith("simtask-") and succeeded.details["operation"] == create.pk
    assert succeeded.details["attempt"] == 1 and succeeded.details["worker"] == succeeded.actor.removeprefix("worker:")
    # and the chain written by web and worker processes together verifies
    report = selectors.chain_verify()
    assert report.ok, report.reason
