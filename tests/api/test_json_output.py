"""The API's JSON (issue 25): the orjson renderer writes DRF's bytes, and a VM's row from the
list's own representation is what DRF's field-by-field serializer gives, also on the detail."""

import datetime
import json
import uuid
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils.translation import gettext_lazy
from rest_framework import renderers, serializers
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.test import APIClient, APIRequestFactory
from rest_framework.utils.serializer_helpers import ReturnDict

from accounts import services as accounts
from compute.api.serializers import PlanSerializer, VirtualMachineSerializer
from compute.models import IPPool, VirtualMachine
from compute.services.ipam import ipam_pool_check
from controlplane.api_output import JSONRenderer

pytestmark = pytest.mark.django_db

IST = datetime.timezone(datetime.timedelta(hours=5, minutes=30))
BODY = {
    "price": Decimal("1.50"),  # a Decimal no serializer converted: DRF's encoder writes a number
    "at": datetime.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=datetime.UTC),  # "...Z", as DRF
    "at_ist": datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=IST),
    "day": datetime.date(2026, 1, 2),
    "took": datetime.timedelta(seconds=90),
    "id": uuid.UUID("12345678-1234-5678-1234-567812345678"),
    "label": gettext_lazy("Reboot"),
    "text": 'नमस्ते \u2028 line \u2029 paragraph "quoted" </script>',
    "nested": ReturnDict({"b": [1, 2.5, None, True], "a": ("x", "y")}, serializer=None),
    "keys": {1: "one", "two": 2},
    "float": 0.1,
}


def drf_bytes(data, media_type=None):
    return renderers.JSONRenderer().render(data, media_type)


def test_the_api_renders_with_the_orjson_renderer():
    assert api_settings.DEFAULT_RENDERER_CLASSES[0] is JSONRenderer


def test_the_renderer_writes_drf_s_bytes():
    assert JSONRenderer().render(BODY) == drf_bytes(BODY)
    assert b"\\u2028" in JSONRenderer().render(BODY)  # escaped, as DRF: safe inside <script>


def test_what_orjson_cannot_write_and_an_indent_request_go_to_drf_s_renderer():
    huge = {"n": 2**70}
    assert JSONRenderer().render(huge) == drf_bytes(huge)
    indented = "application/json; indent=4"
    assert JSONRenderer().render(BODY, indented) == drf_bytes(BODY, indented)
    assert JSONRenderer().render(None) == b""


def test_decimals_and_datetimes_come_out_as_the_serializers_write_them(api_client_for_user, plan):
    response = api_client_for_user.get("/api/v1/plans/")
    expected = PlanSerializer(plan).data
    body = response.content
    assert body == drf_bytes([expected])
    assert f'"price_hourly_running":"{plan.price_hourly_running}"'.encode() in body


@pytest.fixture
def api_client_for_user(user):
    _, raw = accounts.token_create(user=user, name="output")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


@pytest.fixture
def vms_with_addresses(idle_vm, simulator):
    pool = IPPool(
        name="pool-out",
        hypervisor=simulator,
        ipv4_prefix="192.0.2.0/29",
        ipv4_gateway="192.0.2.1",
        ipv6_prefix="2001:db8:10::/48",
        ipv6_gateway="2001:db8:10::1",
        dns_servers=["192.0.2.53"],
    )
    ipam_pool_check(pool=pool)
    pool.save()
    active, stopped = idle_vm("active"), idle_vm("stopped")
    VirtualMachine.objects.filter(pk=stopped.pk).update(
        task_state="start",
        ip_addresses=["192.0.2.3", "2001:db8:10::3"],
        power_state_at=datetime.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=datetime.UTC),
    )
    return active, stopped


def drf_row(vm_id):
    """The row as DRF's generic ModelSerializer machinery writes it (field by field)."""
    from compute import selectors

    vm = VirtualMachine.objects.select_related("project", "plan", "image", "hypervisor").prefetch_related(
        selectors.assigned_addresses_prefetch()
    )
    vm = vm.get(pk=vm_id)
    request = Request(APIRequestFactory().get("/api/v1/virtual-machines/"))
    serializer = VirtualMachineSerializer(vm, context={"request": request})
    return serializers.ModelSerializer.to_representation(serializer, vm)


def test_a_vm_row_in_the_list_and_the_detail_is_drf_s_row(api_client_for_user, vms_with_addresses):
    response = api_client_for_user.get("/api/v1/virtual-machines/")
    rows = {row["id"]: row for row in response.json()["results"]}
    assert set(rows) == {vm.pk for vm in vms_with_addresses}
    for vm in vms_with_addresses:
        expected = drf_row(vm.pk)
        assert list(rows[vm.pk]) == list(expected)  # same keys, same order
        assert rows[vm.pk] == json.loads(drf_bytes(expected))
        assert rows[vm.pk]["addresses"], "the pool's addresses are in the row"
        detail = api_client_for_user.get(f"/api/v1/virtual-machines/{vm.pk}/")
        assert detail.content == drf_bytes(expected)
    assert rows[vms_with_addresses[1].pk]["power_state_at"] == "2026-01-02T08:34:05.678901+05:30"


def test_the_list_reads_neither_keys_nor_user_data_nor_prices(api_client_for_user, vms_with_addresses):
    with CaptureQueriesContext(connection) as ctx:
        response = api_client_for_user.get("/api/v1/virtual-machines/")
    assert response.status_code == 200
    page = [q["sql"] for q in ctx.captured_queries if '"compute_virtualmachine"."name"' in q["sql"]]
    assert len(page) == 1, page
    for column in ("ssh_public_key", "user_data", "price_hourly_running", "suspended_reason"):
        assert column not in page[0]
