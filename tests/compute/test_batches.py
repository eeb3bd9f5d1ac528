"""Batch requests (N VMs from one plan and image in one call): all or nothing, the same
admission rules as one request, progress, approval of a batch. The last test builds a
small batch with a real worker on the simulator."""

import base64
import json
import time
import uuid
from decimal import Decimal

import pytest
import redis
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from kombu.transport.redis import PublishBatch

from audit.selectors import chain_verify
from billing.models import BillingProfile
from compute import services
from compute.models import (
    Hypervisor,
    IPAllocation,
    IPPool,
    Operation,
    ProjectQuota,
    ReverseDNSRecord,
    VirtualMachine,
    VMBatch,
    VMRequest,
)
from compute.services.ipam import ipam_pool_check
from controlplane.celery import app
from tests.fixtures.compute import wait_for
from tests.fixtures.factories import PlanFactory
from workers import engine


def _post(api, project, plan, image, hypervisor, **extra):
    body = {
        "project": project.slug,
        "plan": plan.pk,
        "image": image.pk,
        "hypervisor": hypervisor.pk,
        "name_pattern": "lab-{n}",
        "count": 5,
        **extra,
    }
    return api.post("/api/v1/vm-batches/", body, format="json")


def _nothing_written(project):
    assert not VMBatch.objects.filter(project=project).exists()
    assert not VMRequest.objects.filter(project=project).exists()
    assert not VirtualMachine.objects.filter(project=project).exists()
    assert ProjectQuota.objects.filter(project=project).values_list("used_vms", flat=True).first() in (None, 0)


def test_a_batch_is_accepted_in_one_call_and_each_vm_gets_its_own_create_operation(
    api, project, plan, image, simulator, django_capture_on_commit_callbacks
):
    # Given a plan without approval, when a member asks for 5 VMs named lab-{n}
    with django_capture_on_commit_callbacks() as published:
        response = _post(api, project, plan, image, simulator)
    # Then one 201 answers with the batch and its progress
    assert response.status_code == 201, response.content
    body = response.json()
    assert response["Location"] == body["url"]
    assert body["count"] == 5 and body["progress"]["requested"] == 5 and body["progress"]["building"] == 5
    vms = VirtualMachine.objects.filter(project=project).order_by("name")
    assert [vm.name for vm in vms] == ["lab-1", "lab-2", "lab-3", "lab-4", "lab-5"]
    assert {(vm.status, vm.task_state) for vm in vms} == {("building", "create")}
    ops = Operation.objects.filter(vm__in=vms, action="create", state="pending")
    assert ops.count() == 5 and len(published) == 1  # the 5 operations published together, on commit
    assert set(VMRequest.objects.filter(batch_id=body["id"]).values_list("status", flat=True)) == {"approved"}
    assert ProjectQuota.objects.get(project=project).used_vms == 5
    assert all(vm.status_events.filter(status="building").exists() for vm in vms)
    assert chain_verify().ok
    # And the list shows it with its progress
    listed = api.get("/api/v1/vm-batches/").json()["results"]
    assert [b["id"] for b in listed] == [body["id"]] and listed[0]["progress"]["building"] == 5


def test_accepting_a_batch_takes_a_bounded_number_of_statements_per_vm(user, project, plan, image, simulator):
    ProjectQuota.objects.update_or_create(
        project=project, defaults={"max_vms": 100, "max_vcpus": 100, "max_memory_mib": 102400, "max_disk_gib": 2000}
    )
    with CaptureQueriesContext(connection) as small:
        services.vm_batch_create(
            user=user, project=project, plan=plan, image=image, hypervisor=simulator, name_pattern="a-{n}", count=5
        )
    with CaptureQueriesContext(connection) as large:
        services.vm_batch_create(
            user=user, project=project, plan=plan, image=image, hypervisor=simulator, name_pattern="b-{n}", count=45
        )
    per_vm = (len(large) - len(small)) / 40
    # Bulk statements only: no create Operation inserted (in a savepoint) per VM
    assert per_vm < 0.5, f"{per_vm} statements per VM"


def test_a_batch_is_published_through_one_broker_connection_in_one_round_trip(
    monkeypatch, user, project, plan, image, simulator, django_capture_on_commit_callbacks
):
    # Given a queue no worker serves, and counters on the broker's connection pool and its socket
    queue = f"batch-publish-{uuid.uuid4().hex[:8]}"
    Hypervisor.objects.filter(pk=simulator.pk).update(queue=queue)
    simulator.refresh_from_db()
    ProjectQuota.objects.update_or_create(project=project, defaults={"max_vms": 100, "max_vcpus": 100})
    acquired, pushes = [], []
    acquire = app.producer_pool.acquire
    send = redis.connection.AbstractConnection.send_packed_command

    def counted_send(connection, command, *args, **kwargs):  # one call: one round trip to Redis
        packed = b"".join(command) if isinstance(command, list) else command
        if b"LPUSH" in packed:  # a round trip that carries task messages
            pushes.append(packed.count(b"LPUSH"))
        return send(connection, command, *args, **kwargs)

    monkeypatch.setattr(app.producer_pool, "acquire", lambda *a, **k: acquired.append(1) or acquire(*a, **k))
    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", counted_send)
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    try:
        # When a batch of 20 is accepted and its transaction commits
        with django_capture_on_commit_callbacks(execute=True):
            batch = services.vm_batch_create(
                user=user, project=project, plan=plan, image=image, hypervisor=simulator, name_pattern="p-{n}", count=20
            )
        monkeypatch.undo()
        # Then every create operation's message is on the queue, exactly once
        messages = [json.loads(raw) for raw in broker.lrange(queue, 0, -1)]
        published = sorted(json.loads(base64.b64decode(m["body"]))[0][0] for m in messages)
        ops = Operation.objects.filter(vm__request__batch=batch, action="create", state="pending")
        assert published == sorted(ops.values_list("pk", flat=True)) and len(published) == 20
        # And they went through one pooled connection in one pipelined round trip, not one each
        assert len(acquired) == 1, f"{len(acquired)} broker connections taken from the pool"
        assert pushes == [20], f"messages per round trip: {pushes}"
    finally:
        broker.delete(queue)


def test_quota_refuses_the_whole_batch_and_nothing_is_written(api, project, plan, image, simulator):
    ProjectQuota.objects.update_or_create(project=project, defaults={"max_vms": 3})
    response = _post(api, project, plan, image, simulator)
    assert response.status_code == 409 and response.json()["error"]["code"] == "quota_exceeded"
    assert "this would make 5" in response.json()["error"]["message"]
    _nothing_written(project)


def test_the_wallet_must_cover_every_vm_of_the_batch(api, project, image, simulator):
    # 10,000 in the wallet covers one VM of this plan for the pre-check hours, not 5
    pricey = PlanFactory(price_hourly_running=Decimal("100.0000"))
    response = _post(api, project, pricey, image, simulator)
    assert response.status_code == 402, response.content
    assert "5 " in response.json()["error"]["message"] and "machines need" in response.json()["error"]["message"]
    _nothing_written(project)
    assert _post(api, project, pricey, image, simulator, count=1).status_code == 201


def test_a_paid_batch_needs_a_billing_profile(api, project, plan, image, simulator):
    BillingProfile.objects.filter(project=project).delete()
    response = _post(api, project, plan, image, simulator)
    assert response.status_code == 409 and "billing profile" in response.json()["error"]["message"]
    _nothing_written(project)


def test_an_ip_pool_too_small_for_the_batch_refuses_all_of_it(api, project, plan, image, simulator):
    pool = IPPool(
        name="pool-a", hypervisor=simulator, ipv4_prefix="192.0.2.0/29", ipv4_gateway="192.0.2.1", ipv6_prefix=""
    )
    ipam_pool_check(pool=pool)
    pool.save()  # .2 to .6: five addresses
    response = _post(api, project, plan, image, simulator, count=6)
    assert response.status_code == 409 and response.json()["error"]["code"] == "ip_pool_exhausted"
    _nothing_written(project)
    assert _post(api, project, plan, image, simulator, count=5).status_code == 201
    assert sorted(a.address for vm in VirtualMachine.objects.all() for a in vm.ip_allocations.all()) == [
        f"192.0.2.{n}" for n in range(2, 7)
    ]


def test_a_batch_takes_its_addresses_in_order_from_the_first_pools_with_room(user, project, plan, image, simulator):
    # Given pool-a with room for three (.1 gateway, .3 excluded, .4 held) and a dual-stack pool-b
    pools = [
        IPPool(name="pool-a", hypervisor=simulator, ipv4_prefix="192.0.2.0/29", ipv4_gateway="192.0.2.1",
               excluded_ranges=["192.0.2.3"]),
        IPPool(name="pool-b", hypervisor=simulator, ipv4_prefix="198.51.100.0/29", ipv4_gateway="198.51.100.1",
               ipv6_prefix="2001:db8:20::/64", ipv6_gateway="2001:db8:20::1"),
    ]  # fmt: skip
    for pool in pools:
        ipam_pool_check(pool=pool)
        pool.save()
    IPAllocation.objects.create(pool=pools[0], family=4, offset=4, address="192.0.2.4", state="reserved")
    # When a batch of five is accepted, in a bounded number of statements whatever its size
    with CaptureQueriesContext(connection) as queries:
        batch = services.vm_batch_create(
            user=user, project=project, plan=plan, image=image, hypervisor=simulator, name_pattern="ip-{n}", count=5
        )
    # Then each VM has what one request at a time would have given it: the lowest free addresses
    # of the first pool with room for all its families
    vms = VirtualMachine.objects.filter(request__batch=batch).order_by("name")
    assert [sorted(a.address for a in vm.ip_allocations.all()) for vm in vms] == [
        ["192.0.2.2"], ["192.0.2.5"], ["192.0.2.6"],
        ["198.51.100.2", "2001:db8:20::2"], ["198.51.100.3", "2001:db8:20::3"],
    ]  # fmt: skip
    ip_statements = [q["sql"] for q in queries if "compute_ipallocation" in q["sql"]]
    assert len(ip_statements) <= 3 * len(pools) + 1, ip_statements  # per pool: purge, read v4, v6; one insert


def test_a_batchs_default_ptr_records_are_written_and_published_together(
    settings, user, project, plan, image, simulator, django_capture_on_commit_callbacks
):
    # Given reverse DNS offered (nothing is delivered here: the records are the outbox)
    settings.POWERDNS_API_URL = "http://127.0.0.1:9"
    settings.REVERSE_DNS_DEFAULT_PTR = "ip-{dashed}.cloud.test"
    pool = IPPool(name="pool-a", hypervisor=simulator, ipv4_prefix="192.0.2.0/28", ipv4_gateway="192.0.2.1")
    ipam_pool_check(pool=pool)
    pool.save()
    # When a batch of eight is accepted
    with CaptureQueriesContext(connection) as queries, django_capture_on_commit_callbacks() as published:
        services.vm_batch_create(
            user=user, project=project, plan=plan, image=image, hypervisor=simulator, name_pattern="dns-{n}", count=8
        )
    # Then every address has its pending default PTR, written in bulk and published in one go
    records = ReverseDNSRecord.objects.order_by("address")
    assert [(r.address, r.ptr, r.pending) for r in records] == [
        (f"192.0.2.{n}", f"ip-192-0-2-{n}.cloud.test.", True) for n in range(2, 10)
    ]
    assert len([q for q in queries if "compute_reversednsrecord" in q["sql"]]) == 2  # lock/read, insert
    assert len(published) == 2  # the create operations, the PTR records


@pytest.mark.parametrize(
    "extra, field",
    [
        ({"name_pattern": "lab"}, "name_pattern"),
        ({"name_pattern": "{n}-{n}"}, "name_pattern"),
        ({"name_pattern": "Lab-{n}"}, "name_pattern"),
        ({"name_pattern": "x" * 60 + "-{n}", "count": 5}, "name_pattern"),
        ({"count": 0}, "count"),
        ({"count": 1001}, "count"),
        ({"first_number": -1}, "first_number"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(api, project, plan, image, simulator, extra, field):
    response = _post(api, project, plan, image, simulator, **extra)
    assert response.status_code == 400 and field in response.json()["error"]["fields"], response.content
    _nothing_written(project)


def test_a_taken_name_refuses_the_batch(api, user, project, plan, image, simulator):
    services.vm_request_create(user=user, project=project, plan=plan, image=image, hypervisor=simulator, name="lab-3")
    response = _post(api, project, plan, image, simulator)
    assert response.status_code == 409 and "lab-3" in response.json()["error"]["message"]
    assert not VMBatch.objects.exists() and ProjectQuota.objects.get(project=project).used_vms == 1
    assert _post(api, project, plan, image, simulator, first_number=4).status_code == 201


def test_a_batch_of_a_plan_needing_approval_waits_for_an_operator(api, staff_api, project, image, simulator):
    approval_plan = PlanFactory(requires_approval=True)
    body = _post(api, project, approval_plan, image, simulator).json()
    assert body["progress"]["pending"] == 5 and not VirtualMachine.objects.exists()
    assert ProjectQuota.objects.get(project=project).used_vms == 5
    assert api.post(f"/api/v1/vm-batches/{body['id']}/approve/").status_code == 403
    response = staff_api.post(f"/api/v1/vm-batches/{body['id']}/approve/")
    assert response.status_code == 200 and response.json()["progress"]["building"] == 5
    assert Operation.objects.filter(action="create", state="pending").count() == 5
    assert staff_api.post(f"/api/v1/vm-batches/{body['id']}/approve/").status_code == 409  # nothing left


def test_rejecting_a_batch_gives_the_quota_back(api, staff_api, project, image, simulator):
    approval_plan = PlanFactory(requires_approval=True)
    batch_id = _post(api, project, approval_plan, image, simulator).json()["id"]
    url = f"/api/v1/vm-batches/{batch_id}/reject/"
    assert staff_api.post(url, {"reason": ""}, format="json").status_code == 400
    response = staff_api.post(url, {"reason": "Lab moved to Monday"}, format="json")
    assert response.status_code == 200 and response.json()["progress"]["refused"] == 5
    assert ProjectQuota.objects.get(project=project).used_vms == 0
    assert set(VMRequest.objects.values_list("reason", flat=True)) == {"Lab moved to Monday"}


def test_another_tenants_batch_is_invisible(api, staff_api, project, plan, image, simulator):
    from rest_framework.test import APIClient

    from tests.fixtures.factories import UserFactory

    batch_id = _post(api, project, plan, image, simulator).json()["id"]
    stranger = APIClient()
    stranger.force_login(UserFactory())
    assert stranger.get(f"/api/v1/vm-batches/{batch_id}/").status_code == 404
    assert stranger.get("/api/v1/vm-batches/").json()["results"] == []
    assert _post(stranger, project, plan, image, simulator).status_code == 400  # not their project


def test_the_portal_form_accepts_a_batch_and_the_list_shows_its_progress(client, user, project, plan, image, simulator):
    client.force_login(user)
    url = f"/projects/{project.slug}/batches/new/"
    assert client.get(url).status_code == 200
    form = {"plan": plan.pk, "image": image.pk, "hypervisor": simulator.pk, "first_number": 1}
    # A refusal is a form error on the page, nothing written
    ProjectQuota.objects.update_or_create(project=project, defaults={"max_vms": 3})
    page = client.post(url, {**form, "name_pattern": "lab-{n}", "count": 4})
    assert page.status_code == 200 and "Quota exceeded" in page.content.decode()
    assert page.context["form"].errors and not VMBatch.objects.exists()
    page = client.post(url, {**form, "name_pattern": "lab", "count": 2})
    assert "name_pattern" in page.context["form"].errors
    # Accepted: redirected to the list, which shows the batch building
    response = client.post(url, {**form, "name_pattern": "lab-{n}", "count": 3})
    assert response.status_code == 302 and response["Location"] == f"/projects/{project.slug}/batches/"
    listing = client.get(response["Location"])
    rows = listing.context["rows"]
    assert len(rows) == 1 and rows[0][1]["building"] == 3 and listing.context["busy"]
    assert "lab-{n}" in listing.content.decode()


def test_operators_create_and_approve_a_batch_in_the_admin(admin_client, project, image, simulator):
    approval_plan = PlanFactory(requires_approval=True)
    form = {
        "project": project.pk, "plan": approval_plan.pk, "image": image.pk, "hypervisor": simulator.pk,
        "name_pattern": "exam-{n}", "first_number": 1,
    }  # fmt: skip
    page = admin_client.post("/admin/compute/vmbatch/add/", {**form, "count": 11})  # over the quota of 10
    assert page.status_code == 200 and "Quota exceeded" in page.content.decode() and not VMBatch.objects.exists()
    response = admin_client.post("/admin/compute/vmbatch/add/", {**form, "count": 4})
    assert response.status_code == 302, response.content
    batch = VMBatch.objects.get()
    assert VMRequest.objects.filter(batch=batch, status="pending").count() == 4
    listing = admin_client.get("/admin/compute/vmbatch/")
    assert "4 pending" in listing.content.decode()
    admin_client.post("/admin/compute/vmbatch/", {"action": "approve", "_selected_action": [batch.pk]})
    assert VirtualMachine.objects.filter(request__batch=batch, status="building").count() == 4
    assert chain_verify().ok


@pytest.mark.worker
def test_a_small_batch_all_becomes_active_through_a_real_worker(live_worker, user, project, plan, image, simulator):
    batch = services.vm_batch_create(
        user=user, project=project, plan=plan, image=image, hypervisor=simulator, name_pattern="class-{n}", count=5
    )
    from compute.selectors import vm_batch_list_for_user, vm_batch_progress

    def progress():
        return vm_batch_progress(vm_batch_list_for_user(user=user).get(pk=batch.pk))

    wait_for(lambda: progress()["active"] == 5, timeout=90, message="5 VMs of the batch active")
    assert progress() | {"active": 0} == {
        "requested": 5, "pending": 0, "refused": 0, "building": 0, "active": 0, "stopped": 0, "failed": 0,
        "deleted": 0,
    }  # fmt: skip
    assert set(Operation.objects.filter(vm__request__batch=batch).values_list("state", flat=True)) == {"succeeded"}
    assert chain_verify().ok


@pytest.mark.worker
def test_a_batch_whose_publish_failed_is_built_after_the_relay_publishes_it(
    live_worker, monkeypatch, user, project, plan, image, simulator
):
    # Given a broker that fails when the batch's pipelined messages are sent
    def broker_down(self):
        raise redis.ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(PublishBatch, "flush", broker_down)
    # When a batch is accepted, it still is, and its operations wait: none was published
    batch = services.vm_batch_create(
        user=user, project=project, plan=plan, image=image, hypervisor=simulator, name_pattern="lost-{n}", count=4
    )
    time.sleep(1)
    ops = Operation.objects.filter(vm__request__batch=batch)
    assert list(ops.values_list("state", flat=True)) == ["pending"] * 4
    # Then once the broker is back, the relay publishes all four and every VM is built
    monkeypatch.undo()
    wait_for(lambda: engine.relay_pending_operations()["relayed"], timeout=10, interval=0.5, message="relayed")
    wait_for(lambda: set(ops.values_list("state", flat=True)) == {"succeeded"}, timeout=90, message="4 builds")
    assert set(VirtualMachine.objects.filter(request__batch=batch).values_list("status", flat=True)) == {"active"}
