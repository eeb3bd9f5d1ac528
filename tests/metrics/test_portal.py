"""The Metrics tab: charts wired to the API, this month's transfer, alert rules for members only."""

import pytest
from django.core import mail
from django.utils import timezone

from accounts.choices import Role
from accounts.models import Membership
from compute.models import VMAlertRule, VMTransfer
from compute.services.metrics import month_of
from tests.fixtures.factories import UserFactory


def page(vm):
    return f"/projects/{vm.project.slug}/vms/{vm.pk}/metrics/"


@pytest.mark.django_db
def test_the_tab_shows_charts_transfer_and_the_alert_form(client, user, sim_vm, django_assert_max_num_queries):
    vm = sim_vm("web")
    vm.plan.included_transfer_gb = 100
    vm.plan.save()
    VMTransfer.objects.create(
        vm=vm, month=month_of(timezone.now()), rx_bytes=30 * 10**9, tx_bytes=10**9, updated_at=timezone.now()
    )
    client.force_login(user)
    with django_assert_max_num_queries(25):
        response = client.get(page(vm))
    html = response.content.decode()
    assert response.status_code == 200
    assert f'data-url="/api/v1/virtual-machines/{vm.pk}/metrics/"' in html
    assert html.count('data-metric="') == 5
    assert "vendor/uplot/uPlot.iife.min.js" in html and "cdn" not in html.lower()
    assert "31.00 GB" in html and "100.00 GB with the" in html and "31.0%" in html
    assert 'name="threshold"' in html
    assert f'href="{page(vm)}"' in client.get(f"/projects/{vm.project.slug}/vms/{vm.pk}/").content.decode()


@pytest.mark.django_db
def test_a_member_adds_and_removes_a_rule_and_bad_input_is_a_message(client, user, sim_vm):
    vm = sim_vm("web")
    client.force_login(user)
    response = client.post(
        page(vm).replace("metrics/", "alerts/"), {"kind": "cpu", "threshold": "90", "duration_minutes": "10"}
    )
    assert response.status_code == 302
    rule = VMAlertRule.objects.get(vm=vm)
    assert (rule.kind, rule.threshold, rule.duration_minutes, rule.state) == ("cpu", 90, 10, "ok")

    response = client.post(page(vm).replace("metrics/", "alerts/"), {"kind": "cpu", "threshold": "abc"}, follow=True)
    assert "Enter a whole number for the threshold." in response.content.decode()
    response = client.post(
        page(vm).replace("metrics/", "alerts/"), {"kind": "transfer", "threshold": "80"}, follow=True
    )
    assert "includes no transfer" in response.content.decode()
    assert VMAlertRule.objects.count() == 1

    client.post(page(vm).replace("metrics/", f"alerts/{rule.pk}/delete/"))
    assert not VMAlertRule.objects.exists()
    assert not mail.outbox


@pytest.mark.django_db
def test_a_viewer_sees_but_cannot_add_and_a_stranger_gets_404(client, sim_vm):
    vm = sim_vm("web")
    viewer = UserFactory()
    Membership.objects.create(project=vm.project, user=viewer, role=Role.VIEWER)
    client.force_login(viewer)
    assert 'name="threshold"' not in client.get(page(vm)).content.decode()
    response = client.post(page(vm).replace("metrics/", "alerts/"), {"kind": "cpu", "threshold": "90"})
    assert response.status_code in (302, 403) and not VMAlertRule.objects.exists()
    client.force_login(UserFactory())
    assert client.get(page(vm)).status_code == 404
