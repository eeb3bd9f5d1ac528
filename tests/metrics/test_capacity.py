"""Hypervisor capacity: placement refuses a plan that does not fit; operators see how full each one is."""

import pytest

from compute import services
from compute.models import VMMetricSample, VMRequest
from controlplane.errors import Conflict
from tests.fixtures.factories import PlanFactory, UserFactory


def request_body(project, plan, image, hypervisor, name):
    return {"project": project.slug, "plan": plan.pk, "image": image.pk, "hypervisor": hypervisor.pk, "name": name}


@pytest.mark.django_db
def test_a_request_that_does_not_fit_is_a_clear_409(api, project, plan, image, simulator, sim_vm):
    simulator.capacity_vcpus = 3
    simulator.save()
    sim_vm("a")
    sim_vm("b")  # 2 of 3 vCPUs allocated (the plan has 1)
    big = PlanFactory(vcpus=2)

    response = api.post("/api/v1/vm-requests/", request_body(project, big, image, simulator, "big"), format="json")

    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "hypervisor_full"
    assert f"{simulator.name} cannot fit the {big.name} plan (vCPU: 1 free, the plan needs 2)" in error["message"]
    assert "hypervisor" in error["fields"]
    assert not VMRequest.objects.filter(name="big").exists()
    ok = api.post("/api/v1/vm-requests/", request_body(project, plan, image, simulator, "small"), format="json")
    assert ok.status_code == 201  # the last vCPU still fits a 1-vCPU plan


@pytest.mark.django_db
def test_approval_checks_again_under_the_hypervisors_lock(user, project, image, simulator, sim_vm):
    approval_plan = PlanFactory(requires_approval=True, memory_mib=4096)
    request = services.vm_request_create(
        user=user, project=project, plan=approval_plan, image=image, hypervisor=simulator, name="later"
    )
    simulator.capacity_memory_mib = 4096
    simulator.save()
    sim_vm("meanwhile")  # 1024 MiB taken while the request waited
    staff = UserFactory(is_staff=True)
    with pytest.raises(Conflict, match="memory \\(MiB\\): 3072 free, the plan needs 4096"):
        services.vm_request_approve_as_staff(vm_request=request, actor=staff)
    request.refresh_from_db()
    assert request.status == "pending"


@pytest.mark.django_db
def test_operators_see_allocation_usage_and_warnings(admin_client, client, simulator, sim_vm, settings):
    settings.VM_METRICS = {**settings.VM_METRICS, "CAPACITY_WARN_PERCENT": 50}
    simulator.capacity_vcpus, simulator.capacity_memory_mib = 2, 100_000
    simulator.save()
    vm = sim_vm("a")
    sim_vm("b")
    VMMetricSample.objects.create(vm=vm, at=vm.created_at, cpu_pct=50, mem_used=512 * 2**20)
    html = admin_client.get("/operators/capacity/").content.decode()
    assert "2 / 2 (100.0%)" in html and "2048 / 100000 (2.0%)" in html and "/ no limit" in html
    assert "0.5 vCPU busy, 512 MiB" in html
    assert "vCPU 100.0% allocated" in html
    assert "Filling up:" in admin_client.get("/admin/").content.decode()
    admin_client.logout()
    client.force_login(UserFactory(is_staff=True))  # staff without a verified second factor
    assert client.get("/operators/capacity/").status_code == 302  # to the admin login


@pytest.mark.django_db(transaction=True)
def test_two_approvals_cannot_both_take_the_last_room(user, project, image, simulator):
    import threading

    from django.db import connection

    approval_plan = PlanFactory(requires_approval=True)
    requests = [
        services.vm_request_create(
            user=user, project=project, plan=approval_plan, image=image, hypervisor=simulator, name=name
        )
        for name in ("first", "second")
    ]
    simulator.capacity_vcpus = 1
    simulator.save()
    staff = UserFactory(is_staff=True)
    barrier, results = threading.Barrier(2), []

    def approve(vm_request):
        barrier.wait()
        try:
            services.vm_request_approve_as_staff(vm_request=vm_request, actor=staff)
            results.append("approved")
        except Conflict:
            results.append("full")
        finally:
            connection.close()

    threads = [threading.Thread(target=approve, args=(r,)) for r in requests]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(results) == ["approved", "full"]


@pytest.mark.django_db
def test_operators_see_each_hypervisors_peak_use_per_day(admin_client, simulator, sim_vm, plan):
    from datetime import timedelta

    from django.utils import timezone

    from compute.models import VMMetricRollup
    from compute.selectors_capacity import hypervisor_usage_trend

    # Given two VMs (1 vCPU plans) with hourly rollups yesterday and today, none the day before
    web, db = sim_vm("web"), sim_vm("db")
    now = timezone.now()
    today = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    yesterday = today - timedelta(days=1)
    for vm, cpu, mem in ((web, 50, 256), (db, 100, 512)):  # the same hour: summed
        VMMetricRollup.objects.create(
            vm=vm, step=3600, at=yesterday + timedelta(hours=3), cpu_pct=cpu, mem_used=mem * 2**20, samples=60
        )
    VMMetricRollup.objects.create(vm=web, step=3600, at=yesterday + timedelta(hours=9), cpu_pct=25, samples=60)
    VMMetricRollup.objects.create(vm=web, step=3600, at=today, cpu_pct=10, mem_used=128 * 2**20, samples=60)
    VMMetricRollup.objects.create(vm=web, step=300, at=today, cpu_pct=99, samples=5)  # not an hourly rollup

    days = hypervisor_usage_trend(days=3, now=now)[simulator.pk]

    # Then each day's busiest hour, summed over the VMs; a day without data is None, not 0
    assert [(d.peak_vcpus, d.peak_memory_mib) for d in days] == [(None, None), (1.5, 768), (0.1, 128)]
    assert [d.day for d in days][-1] == timezone.localtime(now).date()

    html = admin_client.get("/operators/capacity/").content.decode()
    assert "Peak use per day, last 7 days" in html
    assert "1.5 vCPU, 768 MiB" in html and "0.1 vCPU, 128 MiB" in html


@pytest.mark.django_db
def test_prometheus_gets_allocation_capacity_and_use_per_hypervisor(client, simulator, sim_vm, plan):
    from django.utils import timezone

    from tests.metrics.test_prometheus import scrape

    simulator.capacity_vcpus, simulator.capacity_memory_mib = 8, 0
    simulator.save()
    vm = sim_vm("a")
    sim_vm("b")
    VMMetricSample.objects.create(vm=vm, at=timezone.now(), cpu_pct=50, mem_used=512 * 2**20)

    samples = scrape(client)

    def value(name, resource):
        return samples.get((name, frozenset({"hypervisor": simulator.name, "resource": resource}.items())))

    assert value("controlplane_hypervisor_allocated", "vcpus") == 2 * plan.vcpus
    assert value("controlplane_hypervisor_allocated", "memory_mib") == 2 * plan.memory_mib
    assert value("controlplane_hypervisor_capacity", "vcpus") == 8
    assert value("controlplane_hypervisor_capacity", "memory_mib") == 0  # not limited
    assert value("controlplane_hypervisor_used", "vcpus") == 0.5 * plan.vcpus
    assert value("controlplane_hypervisor_used", "memory_mib") == 512
    assert samples[("controlplane_hypervisor_pending_requests", frozenset({"hypervisor": simulator.name}.items()))] == 0
