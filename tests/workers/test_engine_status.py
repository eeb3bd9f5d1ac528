"""``manage.py engine_status`` (workers/management/commands/): the operator's one-screen summary."""

from io import StringIO

from django.core.management import call_command
from django.utils import timezone

from compute.models import Operation


def test_engine_status_lists_active_operations_and_recent_failures(project, simulator):
    # Given one operation waiting and one that gave up
    Operation.objects.create(project=project, hypervisor=simulator, action="provision")
    Operation.objects.create(
        project=project,
        hypervisor=simulator,
        action="provision",
        state="failed",
        finished_at=timezone.now(),
        error_message="hypervisor said no",
    )

    # When the operator asks
    out = StringIO()
    call_command("engine_status", stdout=out)

    # Then both show, with the hypervisor's name and the reason
    text = out.getvalue()
    assert simulator.name in text and "pending" in text
    assert "hypervisor said no" in text
    assert "Live workers: 0" in text
