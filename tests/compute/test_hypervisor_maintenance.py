"""Maintenance on and off: one audited service, used by the admin's actions."""

import pytest

from audit.models import AuditEvent
from compute import services
from compute.models import Hypervisor


def _events():
    return list(AuditEvent.objects.filter(action__startswith="hypervisor.maintenance.").order_by("id"))


def test_the_service_switches_maintenance_and_records_each_change_once(simulator, admin_user):
    # When an operator puts the hypervisor into maintenance, twice
    assert services.hypervisor_set_maintenance(hypervisor=simulator, on=True, actor=admin_user) is True
    assert services.hypervisor_set_maintenance(hypervisor=simulator, on=True, actor=admin_user) is False

    # Then it is in maintenance and one event says who did it
    assert Hypervisor.objects.get(pk=simulator.pk).maintenance is True
    (entered,) = _events()
    assert (entered.action, entered.actor_user_id, entered.target_id) == (
        "hypervisor.maintenance.entered",
        admin_user.pk,
        str(simulator.pk),
    )
    assert entered.details["hypervisor"] == simulator.name

    # When it is taken out again: a second event, and no change means no event
    assert services.hypervisor_set_maintenance(hypervisor=simulator, on=False, actor="operator:cli") is True
    assert services.hypervisor_set_maintenance(hypervisor=simulator, on=False, actor="operator:cli") is False
    assert Hypervisor.objects.get(pk=simulator.pk).maintenance is False
    assert [(e.action, e.actor) for e in _events()] == [
        ("hypervisor.maintenance.entered", admin_user.email),
        ("hypervisor.maintenance.left", "operator:cli"),
    ]


@pytest.mark.parametrize(
    ("action", "on", "recorded"), [("enter_maintenance", True, "entered"), ("leave_maintenance", False, "left")]
)
def test_the_admin_actions_go_through_the_service(admin_client, admin_user, simulator, action, on, recorded):
    # Given a hypervisor in the other state
    Hypervisor.objects.filter(pk=simulator.pk).update(maintenance=not on)

    # When an operator runs the admin action on it
    response = admin_client.post("/admin/compute/hypervisor/", {"action": action, "_selected_action": [simulator.pk]})

    # Then it changed, and the audit event names the operator and the admin request's id
    assert response.status_code == 302
    assert Hypervisor.objects.get(pk=simulator.pk).maintenance is on
    (event,) = _events()
    assert (event.action, event.actor_user_id) == (f"hypervisor.maintenance.{recorded}", admin_user.pk)
    assert event.request_id and event.request_id == response["X-Request-ID"]


def test_the_change_form_shows_maintenance_but_cannot_change_it(admin_client, simulator):
    page = admin_client.get(f"/admin/compute/hypervisor/{simulator.pk}/change/").content.decode()
    assert 'name="max_concurrent_operations"' in page
    assert 'name="maintenance"' not in page and "field-maintenance" in page
