"""accounts.hooks: what other apps do when a project is created or an address
is verified, without accounts importing them (accounts imports no other
project app; billing registers its hooks at ready)."""

import ast
from pathlib import Path

import pytest

from accounts import hooks, services
from billing.models import Wallet

ROOT = Path(__file__).resolve().parents[2]
OTHER_APPS = ("billing", "compute", "workers")


def test_accounts_imports_no_app_above_it():
    offenders = []
    for path in sorted((ROOT / "accounts").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            offenders += [f"{path.relative_to(ROOT)}: {n}" for n in names if n.split(".")[0] in OTHER_APPS]
    assert offenders == []


def test_billing_registered_the_wallet_and_the_trial():
    assert [h.__name__ for h in hooks.registered("project_created")] == ["wallet_open"]
    assert [h.__name__ for h in hooks.registered("email_verified")] == ["trial_grant"]


@pytest.mark.django_db
def test_a_failing_hook_rolls_back_the_project(user, monkeypatch):
    def refuse(**kwargs):
        raise RuntimeError("no")

    monkeypatch.setitem(hooks._hooks, "project_created", [*hooks._hooks["project_created"], refuse])
    with pytest.raises(RuntimeError):
        services.project_create(name="Doomed", owner=user)
    assert not user.projects.filter(name="Doomed").exists()
    monkeypatch.setitem(hooks._hooks, "project_created", hooks._hooks["project_created"][:-1])
    assert Wallet.objects.filter(project=services.project_create(name="Fine", owner=user)).exists()
