"""Statements per API request on the hot paths (issue 25): budgets that fail when a change adds
a query. Counted with a personal access token, as the API benchmark (bench/api) sends them."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from accounts import services as accounts
from compute.models import VirtualMachine

pytestmark = pytest.mark.django_db


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
    assert len(sql) == 4, sql  # token, count, page, addresses
    assert not any("DISTINCT" in q for q in sql)


def test_a_vm_action_stays_within_its_statement_budget(token_api, idle_vm):
    vm = idle_vm("active")
    sql, response = statements(token_api, "post", f"/api/v1/virtual-machines/{vm.pk}/reboot/")
    assert response.status_code == 202, response.json()
    # token, VM, then one transaction: role, row lock, operation (in a savepoint), task state,
    # the audit append (chain lock, head, insert); no address prefetch for an action
    assert len(sql) <= 13, sql
    assert not any("compute_ipallocation" in q for q in sql)
    assert VirtualMachine.objects.get(pk=vm.pk).task_state == "reboot"
