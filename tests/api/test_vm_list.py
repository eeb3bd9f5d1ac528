"""The VM list's page (issue 25): its rows and their total in one statement, the addresses in
one more, whatever the project's size; pages judged exactly as Django's paginator judges them."""

import datetime
import json

import pytest
from django.core.paginator import EmptyPage, PageNotAnInteger, Paginator
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from bench.orm import active_vms
from compute.models import IPAllocation, ReverseDNSRecord, VirtualMachine
from controlplane.api import CountedPaginator
from tests.api.test_json_output import drf_bytes, drf_row, vms_with_addresses  # noqa: F401 (fixture)
from tests.api.test_statement_budget import token_api  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db


@pytest.fixture
def many_vms(user, project, plan, image, simulator):
    def make(count, start=0):
        return active_vms(
            hypervisor=simulator,
            plan=plan,
            image=image,
            owners=[(user, project)],
            count=count,
            name=lambda n: f"many-{n + start:04d}",
            backend_id=lambda n: f"sim-many-{n + start}",
        )

    return make


def page_statements(client, path):
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(path)
    assert response.status_code == 200, response.content
    return [q["sql"] for q in ctx.captured_queries], response.json()


def test_a_page_is_three_statements_for_one_vm_and_for_many(token_api, many_vms):  # noqa: F811
    many_vms(1)
    one, body = page_statements(token_api, "/api/v1/virtual-machines/")
    assert body["count"] == 1
    many_vms(149, start=1)
    first, body = page_statements(token_api, "/api/v1/virtual-machines/")
    last, last_body = page_statements(token_api, "/api/v1/virtual-machines/?page=3")
    assert body["count"] == last_body["count"] == 150 and len(last_body["results"]) == 50
    assert len(one) == len(first) == len(last) == 3, first  # the token; the page with its count; addresses
    assert not any(q.lstrip().startswith("SELECT COUNT(*)") for q in first)
    assert "COUNT(*)" in first[1] and "LIMIT 50" in first[1]
    # the count runs over the VMs alone, without the joins the page's columns need
    counted = first[1][first[1].index("COUNT(*)") : first[1].index("_page_total")]
    assert "compute_plan" not in counted and "compute_hypervisor" not in counted, counted


def test_an_empty_list_is_two_statements_and_a_page_past_the_end_a_404(token_api, many_vms):  # noqa: F811
    sql, body = page_statements(token_api, "/api/v1/virtual-machines/")
    assert body == {"count": 0, "next": None, "previous": None, "results": []}
    assert len(sql) == 2, sql  # the token, the page: no VM, no addresses to read
    many_vms(50)
    for page in ("2", "0", "-1", "x", "1.5", "99999999999999999999"):
        response = token_api.get(f"/api/v1/virtual-machines/?page={page}")
        assert response.status_code == 404, page
        assert response.json()["error"]["message"] == "Invalid page."


def test_next_previous_and_last_are_drf_s(token_api, many_vms):  # noqa: F811
    many_vms(120)
    body = token_api.get("/api/v1/virtual-machines/?page=2&status=active").json()
    assert body["count"] == 120 and len(body["results"]) == 50
    assert body["next"] == "http://testserver/api/v1/virtual-machines/?page=3&status=active"
    assert body["previous"] == "http://testserver/api/v1/virtual-machines/?status=active"
    last = token_api.get("/api/v1/virtual-machines/?page=last").json()
    assert last["count"] == 120 and [row["name"] for row in last["results"]] == [
        f"many-{n:04d}" for n in range(100, 120)
    ]
    assert last["next"] is None
    ordered = token_api.get("/api/v1/virtual-machines/?ordering=-name").json()["results"]
    assert ordered[0]["name"] == "many-0119"


@pytest.mark.parametrize("number", [1, 2, 3, 4, "2", "3", 2.0, 2.5, "2.0", "x", None, 0, -1, "last", 10**20])
def test_the_counted_paginator_judges_a_page_as_django_s(many_vms, number):
    many_vms(120)
    queryset = VirtualMachine.objects.order_by("name")

    def outcome(paginator):
        try:
            page = paginator.page(number)
        except (EmptyPage, PageNotAnInteger) as exc:
            return type(exc), str(exc)
        return list(page), page.number, paginator.count, paginator.num_pages, page.has_next(), page.has_previous()

    rows = queryset.values_list("id", "name")
    assert outcome(CountedPaginator(rows, 50)) == outcome(Paginator(rows, 50))
    assert outcome(CountedPaginator(queryset, 50)) == outcome(Paginator(queryset, 50))


def test_the_count_comes_off_the_rows(many_vms):
    many_vms(3)
    queryset = VirtualMachine.objects.order_by("name")
    for rows in (queryset, queryset.values_list("id", "name"), queryset.values("id", "name")):
        page = CountedPaginator(rows, 2).page(1)
        assert page.paginator.count == 3
        first = page.object_list[0]
        if isinstance(first, VirtualMachine):
            assert not hasattr(first, CountedPaginator.COUNT)
        else:
            assert len(first) == 2 and CountedPaginator.COUNT not in first


def test_rows_with_ptr_records_and_in_utc_are_drf_s(token_api, settings, vms_with_addresses):  # noqa: F811
    active, stopped = vms_with_addresses
    held = IPAllocation.objects.filter(vm=stopped, state="assigned").order_by("family")
    assert held.count() >= 2
    ReverseDNSRecord.objects.update_or_create(
        address=held[0].address, defaults={"ptr": "web.example.net.", "pending": True}
    )
    ReverseDNSRecord.objects.filter(address=held[1].address).delete()
    VirtualMachine.objects.filter(pk=active.pk).update(
        lost_at=datetime.datetime(2026, 3, 4, 5, 6, 7, tzinfo=datetime.UTC), missing_since=None
    )
    for zone in ("UTC", "Asia/Kolkata"):
        settings.TIME_ZONE = zone  # the API's display zone (a token's request runs in it)
        rows = {row["id"]: row for row in token_api.get("/api/v1/virtual-machines/").json()["results"]}
        with timezone.override(zone):
            for vm in vms_with_addresses:
                expected = drf_row(vm.pk)
                assert rows[vm.pk] == json.loads(drf_bytes(expected)), zone
                assert token_api.get(f"/api/v1/virtual-machines/{vm.pk}/").content == drf_bytes(expected), zone
        addresses = rows[stopped.pk]["addresses"]
        assert addresses[0]["ptr"] == "web.example.net." and addresses[0]["ptr_pending"] is True
        assert addresses[1]["ptr"] == "" and addresses[1]["ptr_pending"] is False
        assert rows[active.pk]["lost_at"] == ("2026-03-04T05:06:07Z" if zone == "UTC" else "2026-03-04T10:36:07+05:30")


def test_a_page_without_filters_is_the_filtered_path_s_page_compiled_once(token_api, many_vms, monkeypatch):  # noqa: F811
    from compute.api import views

    many_vms(120)
    page = views._PAGE[False]
    builds = []
    monkeypatch.setattr(page, "build", lambda *args: builds.append(args) or views._page_rows(*args))
    monkeypatch.setattr(page, "_shapes", {})
    for number in (1, 2, 3):
        plain = token_api.get(f"/api/v1/virtual-machines/?page={number}").json()
        filtered = token_api.get(f"/api/v1/virtual-machines/?page={number}&ordering=name").json()
        assert plain["results"] == filtered["results"] and plain["count"] == filtered["count"] == 120
    assert len(builds) == 2  # the shape's compilation (the user's values and the probe's), then never again


def test_staff_see_every_vm_on_a_plain_page_as_with_filters(staff_api, many_vms, plan, image, simulator):
    from tests.fixtures.factories import UserFactory

    many_vms(60)
    stranger = UserFactory()  # another user's project: staff see it, its owner's peers would not
    active_vms(
        hypervisor=simulator,
        plan=plan,
        image=image,
        owners=[(stranger, stranger.projects.get())],
        count=1,
        name=lambda n: "zz-other",
        backend_id=lambda n: "sim-zz-other",
    )
    plain = staff_api.get("/api/v1/virtual-machines/?page=2").json()
    filtered = staff_api.get("/api/v1/virtual-machines/?page=2&ordering=name").json()
    assert plain["count"] == filtered["count"] == VirtualMachine.objects.count() == 61
    assert plain["results"] == filtered["results"] and plain["results"][-1]["name"] == "zz-other"
