"""Admission checks for VM requests: a registry that other apps fill at start-up.

compute asks no other app anything directly (dependency direction: billing →
compute, never back). An app that must be able to refuse a VM request
registers a check from its ``AppConfig.ready()``; billing registers the
billing-profile check and the wallet pre-check
(``billing.services.billing_profile_check``, ``wallet_check_can_afford``).

A check is a callable taking keyword arguments ``project``, ``plan`` and
``count`` (how many VMs of the plan are asked for at once: 1, or a batch's size). It
refuses by raising a domain error (``controlplane.errors.ServiceError``:
``PaymentRequired``, ``Conflict``...), which the API and the portal turn into
a 4xx; its return value is ignored. ``vm_request_create`` runs every check,
in registration order, inside its transaction and before quota is reserved.
With no check registered every request is admitted.
"""

from __future__ import annotations

from collections.abc import Callable

Check = Callable[..., object]

_checks: list[Check] = []


def register(check: Check) -> Check:
    """Add ``check`` (once: registering it again changes nothing). Returns it,
    so it can be used as a decorator."""
    if check not in _checks:
        _checks.append(check)
    return check


def registered() -> tuple[Check, ...]:
    """The checks ``run_checks`` runs, in order."""
    return tuple(_checks)


def run_checks(*, project, plan, count: int = 1) -> None:
    """Run every registered check; the first refusal propagates."""
    for check in _checks:
        check(project=project, plan=plan, count=count)
