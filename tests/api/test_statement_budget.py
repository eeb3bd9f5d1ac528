"""Statements per API request on the hot paths (issue 25): budgets that fail when a change adds
a query. Counted with a personal access token, as the API benchmark (bench/api) sends them."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from accounts import services as accounts
from compute.models import VirtualMachine

pytestmark = pytest.mark.django_db

ACTION_STATEMENTS = 6  # POST /api/v1/virtual-machines/{id}/reboot/ (start, stop: the same path); the aim was 8


@pytest.fixture
def token_api(user):
    _, raw = accounts.token_create(user=user, name="budget")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    client.get("/api/v1/plans/")  # the first use of a token records it
    return client


def statements(client, method, path):
    with CaptureQueriesContext(connection) as ctx:
        response = getattr(client, method)(path)
    return [q["sql"] for q in ctx.captured_queries], response


def test_a_token_and_its_owner_s_two_factor_state_are_one_query(token_api):
    sql, response = statements(token_api, "get", "/api/v1/plans/")
    assert response.status_code == 200
    assert len(sql) == 2, sql  # the token (with the owner's 2FA state), the plans


def test_listing_vms_needs_no_distinct_and_a_fixed_number_of_queries(token_api, idle_vm):
    for status in ("active", "stopped", "error"):
        idle_vm(status)
    sql, response = statements(token_api, "get", "/api/v1/virtual-machines/")
    assert response.status_code == 200 and response.json()["count"] == 3
    assert len(sql) == 3, sql  # token, page with its count (CountedPagination), addresses
    assert not any("DISTINCT" in q for q in sql)


def test_a_vm_action_stays_within_its_statement_budget(token_api, idle_vm):
    vm = idle_vm("active")
    sql, response = statements(token_api, "post", f"/api/v1/virtual-machines/{vm.pk}/reboot/")
    assert response.status_code == 202, response.json()
    # The token, then one transaction (BEGIN and COMMIT: in the test's transaction a SAVEPOINT and
    # its RELEASE): the VM taken (one UPDATE checking the role, idle, status and suspension, and
    # setting task_state), the operation (INSERT ... ON CONFLICT DO NOTHING, no savepoint of its
    # own), the audit append (one statement: audit_event_append takes the chain's lock, reads the
    # head and inserts). No address prefetch for an action.
    # The old code: 13 (the VM read before the transaction, the role, the row lock, the
    # operation's savepoint and release, task_state's UPDATE, the chain's lock and head).
    assert len(sql) <= ACTION_STATEMENTS, "\n".join(sql)
    assert sum(q.startswith("SAVEPOINT") for q in sql) == 1, "\n".join(sql)
    assert not any("compute_ipallocation" in q for q in sql)
    assert VirtualMachine.objects.get(pk=vm.pk).task_state == "reboot"
