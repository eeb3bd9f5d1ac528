"""Portal: the VM page's Snapshots and Settings tabs (take, revert with a fresh 2FA code,
delete, resize with the restart shown before confirming); refusals are messages, not 500s."""

import pytest
from django.contrib.messages import get_messages

from compute.choices import Action, SnapshotState, VMStatus
from compute.models import Operation, Snapshot, VirtualMachine
from tests.fixtures.accounts import enrol, login_verified
from tests.fixtures.factories import PlanFactory


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.fixture
def vm(project, user, plan, image, simulator):
    simulator.queue = "nobody-serves-this"
    simulator.save()
    return VirtualMachine.objects.create(
        project=project,
        owner=user,
        name="web-1",
        plan=plan,
        image=image,
        hypervisor=simulator,
        status=VMStatus.ACTIVE,
        power_state="running",
        backend_id="sim-1",
    )


def page_url(project, vm, tail=""):
    return f"/projects/{project.slug}/vms/{vm.pk}/{tail}"


def test_snapshot_tab_take_and_delete(client, user, project, vm):
    client.force_login(user)
    page = client.get(page_url(project, vm)).content.decode()
    assert 'id="snapshots-h"' in page and "Take snapshot" in page and "No snapshots yet." in page

    response = client.post(page_url(project, vm, "snapshots/"), {"name": "before-upgrade"}, follow=True)
    assert "Snapshot of web-1 requested." in messages_of(response)
    operation = Operation.objects.get(vm=vm)
    assert operation.action == Action.SNAPSHOT_CREATE
    snapshot = Snapshot.objects.get(vm=vm)
    assert (snapshot.name, snapshot.state) == ("before-upgrade", "creating")
    assert operation.params["ref"] == f"cp-{snapshot.pk}"
    assert "Snapshot in progress" in response.content.decode()

    # A bad name is a message; a second action while one runs is a message naming it
    Operation.objects.filter(pk=operation.pk).update(state="succeeded")
    VirtualMachine.objects.filter(pk=vm.pk).update(task_state=None)
    Snapshot.objects.filter(pk=snapshot.pk).update(state=SnapshotState.AVAILABLE)
    response = client.post(page_url(project, vm, "snapshots/"), {"name": "Bad Name"}, follow=True)
    assert messages_of(response) == ["Name the snapshot with 1-63 lowercase letters, digits and hyphens."]
    client.post(page_url(project, vm, f"snapshots/{snapshot.pk}/delete/"), follow=True)
    assert Snapshot.objects.get(pk=snapshot.pk).state == SnapshotState.DELETING
    response = client.post(page_url(project, vm, "snapshots/"), {"name": "other"})
    assert messages_of(response)[-1] == (
        "Cannot snapshot web-1: it is busy (delete snapshot in progress); wait for it to finish."
    )


def test_revert_needs_a_fresh_code(client, user, project, vm):
    codes = enrol(user)
    login_verified(client, user, codes.device, recent=False)
    snapshot = Snapshot.objects.create(vm=vm, name="good", state=SnapshotState.AVAILABLE, backend_ref="cp-x")
    revert = page_url(project, vm, f"snapshots/{snapshot.pk}/revert/")
    response = client.post(revert)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/2fa/verify/")
    assert not Operation.objects.filter(vm=vm).exists()
    response = client.post(revert, {"otp_token": codes.next()})
    assert Operation.objects.get(vm=vm).action == Action.SNAPSHOT_REVERT


def test_resize_shows_restart_and_refusals_before_confirming(client, user, project, vm):
    client.force_login(user)
    bigger = PlanFactory(name="bigger", vcpus=2, memory_mib=2048, disk_gib=40)
    smaller = PlanFactory(name="smaller", vcpus=1, memory_mib=512, disk_gib=10)
    disk_only = PlanFactory(name="disk-only", vcpus=1, memory_mib=1024, disk_gib=80)
    page = client.get(page_url(project, vm)).content.decode()
    assert f'id="resize-note-{bigger.pk}">The VM will be restarted.' in page
    assert f'id="resize-note-{disk_only.pk}">No restart needed.' in page
    assert "disks can only grow" in page

    response = client.post(page_url(project, vm, "resize/"), {"plan": smaller.pk}, follow=True)
    assert "disks can only grow" in messages_of(response)[0]
    response = client.post(page_url(project, vm, "resize/"), {"plan": ""}, follow=True)
    assert messages_of(response) == ["Choose a plan to resize to."]
    assert not Operation.objects.filter(vm=vm).exists()

    response = client.post(page_url(project, vm, "resize/"), {"plan": bigger.pk})
    assert messages_of(response) == ["Resize of web-1 to bigger requested."]
    operation = Operation.objects.get(vm=vm)
    assert (operation.action, operation.params["plan"], operation.params["restart"]) == ("resize", bigger.pk, True)
