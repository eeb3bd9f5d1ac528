"""Admission checks: compute runs whatever other apps registered, and never
imports billing (billing -> compute is the only direction)."""

import ast
from pathlib import Path

import pytest

from compute import admission
from compute import services as compute_services
from compute.models import VMRequest
from controlplane.errors import Conflict

COMPUTE = Path(__file__).resolve().parents[2] / "compute"


@pytest.fixture
def no_checks(monkeypatch):
    monkeypatch.setattr(admission, "_checks", [])


def _request(user, project, plan, image, simulator, name="web-1"):
    return compute_services.vm_request_create(
        user=user, project=project, plan=plan, image=image, hypervisor=simulator, name=name
    )


def test_with_no_check_registered_every_request_is_admitted(no_checks, user, plan, image, simulator):
    # Given a project with an empty wallet, and no app that registered a check
    project = user.projects.get()
    # When a VM is requested, then nothing refuses it
    vm_request = _request(user, project, plan, image, simulator)
    assert VMRequest.objects.filter(pk=vm_request.pk).exists()


def test_a_registered_check_refuses_with_its_domain_error_and_nothing_is_written(
    no_checks, user, plan, image, simulator
):
    seen = []

    def closed_on_sundays(*, project, plan, count):
        seen.append((project.pk, plan.pk))
        raise Conflict("No new machines today.", code="closed")

    admission.register(closed_on_sundays)
    admission.register(closed_on_sundays)  # once is enough
    assert admission.registered() == (closed_on_sundays,)
    project = user.projects.get()

    with pytest.raises(Conflict, match="No new machines today"):
        _request(user, project, plan, image, simulator)
    assert seen == [(project.pk, plan.pk)]
    assert not VMRequest.objects.filter(project=project).exists()


def _imported_modules(path: Path):
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module


def test_compute_never_imports_billing():
    offenders = [
        f"{path.relative_to(COMPUTE.parent)} imports {module}"
        for path in sorted(COMPUTE.rglob("*.py"))
        for module in _imported_modules(path)
        if module == "billing" or module.startswith("billing.")
    ]
    assert offenders == []
    assert len(list(COMPUTE.rglob("*.py"))) > 20  # the walk really read compute/
