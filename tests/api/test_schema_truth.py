"""The schema says what the API answers (the schemathesis run checks it broadly;
these pin the cases issue 23 found)."""

import pytest
from drf_spectacular.generators import SchemaGenerator

from billing.models import BillingProfile
from compute.choices import RequestStatus, VMStatus


@pytest.fixture(scope="module")
def components():
    return SchemaGenerator().get_schema(request=None, public=True)["components"]["schemas"]


def _enum(components, component, field):
    ref = components[component]["properties"][field]["allOf"][0]["$ref"]
    return components[ref.rsplit("/", 1)[1]]["enum"]


def test_a_vm_status_and_a_request_status_are_two_enums(components):
    assert _enum(components, "VirtualMachine", "status") == VMStatus.values
    assert _enum(components, "VMRequest", "status") == RequestStatus.values


@pytest.mark.parametrize(
    "component, field",
    [
        ("VMRequest", "decided_by"),
        ("LedgerEntry", "invoice"),
        ("LedgerEntry", "credit_note"),
        ("Operation", "requested_by"),
        ("Operation", "vm_name"),
        ("Invitation", "invited_by"),
        ("BillingProfile", "updated_at"),
    ],
)
def test_fields_that_come_back_null_are_nullable(components, component, field):
    assert components[component]["properties"][field].get("nullable") is True


def test_require_2fa_is_not_offered_at_project_creation(components):
    assert "require_2fa" not in components["ProjectRequest"]["properties"]


def test_the_billing_profile_has_one_shape_before_and_after_it_is_saved(api, project):
    BillingProfile.objects.filter(project=project).delete()  # the shared fixture's project has one
    url = f"/api/v1/projects/{project.slug}/billing-profile/"
    before = api.get(url).json()
    assert before["updated_at"] is None and before["legal_name"] == "" and before["country"] == "IN"
    body = {
        "legal_name": "Acme",
        "address_line1": "1 Road",
        "city": "Pune",
        "pin": "411001",
        "state_code": "27",
        "country": "IN",
    }
    assert api.put(url, body, format="json").status_code == 200
    after = api.get(url).json()
    assert set(after) == set(before)
    assert after["legal_name"] == "Acme" and after["updated_at"] is not None
