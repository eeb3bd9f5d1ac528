"""Billing's wallet pre-check, reached only through compute's admission registry."""

import pytest

from billing import services
from compute import admission
from compute import services as compute_services
from compute.models import VMRequest
from controlplane.errors import PaymentRequired
from tests.fixtures.billing import fund, set_profile


def test_billing_registers_its_wallet_check_at_app_ready():
    assert services.wallet_check_can_afford in admission.registered()


def test_an_unaffordable_request_is_refused_through_the_registry(user, project, plan, image, simulator):
    # Given a project with a billing profile whose wallet cannot pay the plan's first 24 hours (36.00 + GST)
    set_profile(project, "karnataka")
    fund(project, "10.00")

    # When compute runs its admission checks (it knows nothing of billing)
    with pytest.raises(PaymentRequired, match="Top up at least"):
        admission.run_checks(project=project, plan=plan)

    # And when a VM is requested, the same refusal reaches the caller and nothing is written
    with pytest.raises(PaymentRequired, match="Top up at least"):
        compute_services.vm_request_create(
            user=user, project=project, plan=plan, image=image, hypervisor=simulator, name="web-1"
        )
    assert not VMRequest.objects.filter(project=project).exists()

    # Then once the wallet can pay, the request is admitted
    fund(project, "100.00")
    compute_services.vm_request_create(
        user=user, project=project, plan=plan, image=image, hypervisor=simulator, name="web-1"
    )
    assert VMRequest.objects.filter(project=project, name="web-1").exists()
