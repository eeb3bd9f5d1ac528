"""audit.record(): what an event holds, and what it refuses."""

import datetime
import uuid
from decimal import Decimal

import pytest
from django.contrib.auth.models import AnonymousUser
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import audit
from accounts.models import Membership, Project
from audit import chain, selectors
from audit.choices import Action
from audit.models import AuditEvent


def test_an_event_holds_actor_target_project_and_links_to_the_one_before(user, project):
    before = AuditEvent.objects.order_by("-id").first()

    event = audit.record(actor=user, action=Action.MEMBER_ROLE_CHANGED, target=project, details={"to": "admin"})

    event.refresh_from_db()
    assert (event.actor, event.actor_user_id) == (user.email, user.pk)
    assert (event.action, event.target_type, event.target_id) == (
        "member.role_changed",
        "accounts.project",
        str(project.pk),
    )
    assert event.target_repr == project.name and event.project_id == project.pk
    assert event.details == {"to": "admin"}
    assert event.prev_hash == before.hash
    assert event.hash == chain.event_hash(event.prev_hash, chain.payload_of(event.__dict__))


def test_the_project_is_taken_from_a_target_that_has_one(team):
    membership = Membership.objects.get(user=team.member, project=team.project)

    event = audit.record(actor=team.owner, action="member.removed", target=membership)

    assert event.project_id == team.project.pk


def test_an_explicit_project_id_is_accepted(project):
    assert audit.record(actor="system", action="project.suspended", project=project.pk).project_id == project.pk


@pytest.mark.parametrize(
    ("actor", "expected"),
    [
        (None, "system"),
        ("scheduler", "scheduler"),
        ("reconciler", "reconciler"),
        ("worker:node-7", "worker:node-7"),
        ("reaper", "reaper"),
        ("operator:cli", "operator:cli"),
        ("system:auto-approve", "system:auto-approve"),
        (AnonymousUser(), "anonymous"),
    ],
)
def test_system_actors(db, actor, expected):
    event = audit.record(actor=actor, action="drift.detected")
    assert (event.actor, event.actor_user_id) == (expected, None)


def test_worker_actor_names_the_host(db):
    assert audit.worker_actor("hv-12") == "worker:hv-12"
    assert audit.worker_actor().startswith("worker:")


def test_an_unknown_action_is_refused_and_nothing_is_written(user):
    count = AuditEvent.objects.count()
    with pytest.raises(ValueError, match="vm.creat.requested"):
        audit.record(actor=user, action="vm.creat.requested")
    with pytest.raises(ValueError):
        audit.record(actor=user, action=None)
    assert AuditEvent.objects.count() == count


@pytest.mark.parametrize("actor", ["admin", "Scheduler", "", "wrker:node-1"])
def test_an_unknown_actor_name_is_refused(db, actor):
    with pytest.raises(ValueError, match="Unknown audit actor"):
        audit.record(actor=actor, action="admin.action")


def test_an_unsaved_target_is_refused(db):
    with pytest.raises(ValueError, match="saved"):
        audit.record(actor="system", action="project.created", target=Project(name="x"))


def test_every_action_name_is_dotted_and_unique():
    assert len(set(Action.values)) == len(Action.values)
    assert all("." in value and value == value.lower() for value in Action.values)


def test_details_are_stored_as_they_read_back_so_the_chain_verifies(user):
    details = {
        "amount": Decimal("1180.50"),
        "at": datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC),
        "key": uuid.UUID("12345678-1234-5678-1234-567812345678"),
        "big": 1e16,
        "nested": {"b": [1, 2.5, None, True], "a": "ನಮಸ್ಕಾರ"},
    }

    event = audit.record(actor=user, action="wallet.topup", details=details)

    event.refresh_from_db()
    assert event.details["amount"] == "1180.50" and event.details["key"] == "12345678-1234-5678-1234-567812345678"
    assert selectors.chain_verify().ok


def test_details_must_be_a_dict_without_nan(db):
    with pytest.raises(ValueError):
        audit.record(actor="system", action="admin.action", details=["not", "a", "dict"])
    with pytest.raises(ValueError):
        audit.record(actor="system", action="admin.action", details={"x": float("nan")})


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**62), max_value=2**62)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(details=st.dictionaries(st.text(max_size=8), json_values, max_size=5))
def test_any_json_details_survive_postgresql_and_still_verify(db, details):
    event = audit.record(actor="system", action="admin.action", details=details)

    stored = AuditEvent.objects.values(*chain.PAYLOAD_FIELDS).get(pk=event.pk)
    assert stored["details"] == event.details
    assert chain.event_hash(event.prev_hash, chain.payload_of(stored)) == event.hash
