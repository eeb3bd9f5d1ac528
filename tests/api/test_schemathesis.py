"""schemathesis against the live schema, in-process through WSGI, strict: every
operation in the schema, every built-in check (``--checks all``: no 5xx, status
codes, content types, headers and bodies conform to the schema, invalid input is
rejected, valid input accepted, auth enforced, deleted objects stay gone), positive
and negative input, then stateful sequences along the links schemathesis infers
(an object's id from one response fed to the routes that take it).

Every generated request is sent as four callers: a project member's token, a
viewer's token, a read-only token and nobody. The walk is generic: an endpoint
added to the schema is covered without touching this file. To reach real rows,
``{slug}`` and ``{id}`` path parameters and the body's references (``project``,
``plan``, ...) are, in schema-valid cases, swapped for the tenant's (ids found by
listing each collection: ``World.known_ids``). docs/API.md: how to run it and read
a failure; the run time is bounded by ``EXAMPLES`` / ``SCENARIOS``."""

import re
import zlib
from datetime import UTC, datetime, timedelta

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from rest_framework.throttling import SimpleRateThrottle
from schemathesis.core.parameters import ParameterLocation

from accounts import services as accounts_services
from accounts.choices import Role
from billing.choices import RegistrationType
from compute import services
from controlplane.wsgi import application
from tests.fixtures.accounts import add_member
from tests.fixtures.billing import make_gstin
from tests.fixtures.factories import PlanFactory, UserFactory, make_billable
from tests.fixtures.proxmox import SSH_KEY

API = "/api/v1/"
schema = schemathesis.openapi.from_wsgi("/api/schema/", application)
CALLERS = ("member", "viewer", "read_only", "anonymous")
# Fields whose rules a JSON Schema cannot state (a parsable OpenSSH key): schema-valid
# cases send one of these; invalid ones are tests/compute's business.
SEMANTIC = {"ssh_public_key": ["", SSH_KEY], "public_key": [SSH_KEY]}
# A GSTIN's check character is one more such rule; the state it starts with is a rule across fields.
GSTINS = ["", make_gstin("29")]
_BOUNDED = {"deadline": None, "derandomize": True, "database": None, "suppress_health_check": list(HealthCheck)}
EXAMPLES = settings(max_examples=5, **_BOUNDED)  # per operation, each sent as the four callers
SCENARIOS = settings(max_examples=15, stateful_step_count=6, **_BOUNDED)  # per caller


class World:
    """Tenant A: an owner, a member and a viewer with their tokens, an open
    invitation, a VM (with its create operation), a request waiting for approval
    and a receipt, so detail routes meet real rows."""

    def __init__(self, *, plan, image, simulator):
        owner = UserFactory()
        self.project = accounts_services.project_create(name="Schema Tenant", owner=owner)
        make_billable(self.project)
        member = add_member(self.project, UserFactory(), Role.MEMBER).user
        viewer = add_member(self.project, UserFactory(), Role.VIEWER).user
        accounts_services.invitation_create(project=self.project, actor=owner, email="invitee@example.com")
        for name, vm_plan in (("st-vm", plan), ("st-pending", PlanFactory(requires_approval=True))):
            services.vm_request_create(
                user=member, project=self.project, plan=vm_plan, image=image, hypervisor=simulator, name=name
            )
        accounts_services.ssh_key_create(user=member, name="schema-key", public_key=SSH_KEY)
        self.headers = {"anonymous": {}}
        for caller, user, read_only in (
            ("member", member, False),
            ("viewer", viewer, False),
            ("read_only", member, True),
        ):
            _, raw = accounts_services.token_create(user=user, name=caller, read_only=read_only)
            self.headers[caller] = {"Authorization": f"Bearer {raw}"}
        self.ids = self.known_ids()

    def known_ids(self) -> dict[str, list]:
        """``{collection path: [ids]}`` for every collection that has a ``{id}``
        detail route, listed as the member (``{slug}``: the tenant's project)."""
        paths = schema.raw_schema["paths"]
        found = {}
        for template in paths:
            collection = template.removesuffix("{id}/")
            if collection == template or "get" not in paths.get(collection, {}):
                continue
            slug = {"slug": self.project.slug} if "{slug}" in collection else {}
            response = schema[collection]["GET"].Case(path_parameters=slug).call(headers=self.headers["member"])
            body = response.json() if response.status_code == 200 else []
            rows = body.get("results", []) if isinstance(body, dict) else body
            found[collection] = [row["id"] for row in rows if "id" in row] or [0]
        return found

    def point_at_tenant(self, case, *, path_too: bool = True) -> None:
        """In the schema-valid parts of ``case``: body references always name the
        tenant's objects (a valid body naming plan 0 is rightly a 400), and, when
        ``path_too``, ``{slug}`` / ``{id}`` do for every other case (the rest meet
        the 404 path). The choice hangs on the generated values: reruns repeat it."""
        meta = case.meta
        if isinstance(case.body, dict) and not (meta and meta.is_negative_at(ParameterLocation.BODY)):
            references = self.real_references(case.body)
            real = {name: _pick(values, case.body.get(name)) for name, values in references.items()}
            case.body = _across_fields({**case.body, **real})
        if case.query and not (meta and meta.is_negative_at(ParameterLocation.QUERY)):
            references = self.real_references(case.query)
            real = {name: _pick(values, case.query.get(name)) for name, values in references.items()}
            case.query = _across_fields({**case.query, **real})
        if path_too and case.path_parameters and not (meta and meta.is_negative_at(ParameterLocation.PATH)):
            if zlib.crc32(repr(sorted(case.path_parameters.items())).encode()) % 2:
                real = self.real_path_parameters(case.operation.path)
                chosen = {name: _pick(values, case.path_parameters.get(name)) for name, values in real.items()}
                case.path_parameters = {**case.path_parameters, **chosen}

    def real_path_parameters(self, template: str) -> dict[str, list]:
        real = {"slug": [self.project.slug]} if "{slug}" in template else {}
        if "{id}/" in template:
            real["id"] = self.ids.get(template[: template.index("{id}/")], [])
        return {name: values for name, values in real.items() if values}

    def real_references(self, body: dict) -> dict[str, list]:
        """Body fields naming another object: ``project`` (a slug) and ``<thing>``
        when ``/api/v1/<thing>s/`` is a collection (``plan``, ``image``, ...); and
        values valid beyond what JSON Schema can say (``SEMANTIC``)."""
        real = {}
        for name in body:
            if name in SEMANTIC:
                real[name] = SEMANTIC[name]
            elif name == "project":
                real[name] = [self.project.slug]
            elif f"{API}{name.replace('_', '-')}s/" in self.ids:
                real[name] = self.ids[f"{API}{name.replace('_', '-')}s/"]
        # A rule across fields (described in the schema, not stateable in it): a saved key
        # (``ssh_key``) or a pasted one (``ssh_public_key``), not both.
        if "ssh_key" in body:
            real["ssh_public_key"] = [""]
        return real


def _across_fields(values: dict) -> dict:
    """Rules across fields, written in the schema's descriptions (JSON Schema cannot
    state them), kept in schema-valid cases; each one is tested by its app's tests:
    - a time window (``from`` before ``to``, at most 366 days and 5000 points: tests/metrics);
    - a billing profile's country decides its PIN, state, GSTIN and SEZ, and its
      ``registration_type`` which shape the ``gstin`` has (tests/billing; the walk keeps
      regular GSTINs, tests/billing/test_gst_registrations_tds.py the GST-TDS and UIN ones);
    - a weekly backup schedule has a weekday."""
    values = dict(values)
    if "from" in values or "to" in values:  # six hours, ending up to two days ago
        end = datetime.now(UTC) - timedelta(minutes=zlib.crc32(repr(values).encode()) % 2880)
        values |= {k: v.isoformat() for k, v in (("from", end - timedelta(hours=6)), ("to", end)) if k in values}
    if "gstin" in values and "is_sez" in values:
        if str(values.get("country", "IN")).upper() == "IN":
            gstin = _pick(GSTINS, values["gstin"])
            pin = values.get("pin")
            pin = pin if isinstance(pin, str) and re.fullmatch("[1-9][0-9]{5}", pin) else "560001"
            values |= {"pin": pin, "state_code": gstin[:2] or "29", "gstin": gstin}
            values["is_sez"] = values["is_sez"] is True and bool(gstin)
        else:
            values |= {"gstin": "", "is_sez": False}
        if "registration_type" in values:
            values["registration_type"] = RegistrationType.REGULAR
    if values.get("frequency") == "weekly" and not isinstance(values.get("weekday"), int):
        values["weekday"] = 0  # a weekly backup schedule names its weekday (tests/workers/test_backups_e2e.py)
    return values


def _pick(values: list, seed) -> object:
    return values[zlib.crc32(repr(seed).encode()) % len(values)]


@pytest.fixture(autouse=True)
def _keep_the_test_connection():
    """Like Django's test client: the in-process WSGI calls must not close the test's connection."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def world(db, plan, image, simulator, monkeypatch):
    # The run sends thousands of requests a minute; 429s would hide what it is looking for.
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {"anon": "100000/min", "user": "100000/min"})
    return World(plan=plan, image=image, simulator=simulator)


@schema.parametrize()
@EXAMPLES
def test_every_operation_conforms_for_every_caller(case, world):
    """Coverage-phase cases (schemathesis' boundary and type-violating values, many
    per operation) go as the member, who gets past authentication and roles to the
    validation; the fuzzed ones as all four callers."""
    world.point_at_tenant(case)
    callers = CALLERS if case.meta is None or case.meta.phase.name.value != "coverage" else ("member",)
    for caller in callers:
        response = case.call(headers=world.headers[caller])
        case.validate_response(response, headers=world.headers[caller])


@pytest.mark.parametrize("caller", CALLERS)
def test_stateful_sequences_conform(world, caller):
    class Sequences(schema.as_state_machine()):
        def before_call(self, case):
            world.point_at_tenant(case, path_too=False)  # paths come from the links

        def get_call_kwargs(self, case):
            return {"headers": world.headers[caller]}

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            """As the base class, also telling the checks which credentials were sent
            (else the auth check takes the generated ones for what was used)."""
            case.validate_response(
                response,
                additional_checks=additional_checks,
                headers=kwargs["headers"],
                transport_kwargs=kwargs,
                recorder=getattr(self, "recorder", None),
            )

    Sequences.run(settings=SCENARIOS)
