"""schemathesis against the live schema, in-process through WSGI: no 5xx, and every
response conforms to the schema (status codes, bodies, headers).

Runs authenticated (session cookie + CSRF) as a normal project member and as staff,
with a VM, a request and an operation present so detail endpoints hit real rows."""

import pytest
import schemathesis
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore
from django.core.cache import cache
from hypothesis import HealthCheck, settings

from compute import services
from controlplane.wsgi import application
from tests.fixtures.factories import UserFactory

schema = schemathesis.openapi.from_wsgi("/api/schema/", application)
CSRF = "a" * 32


def _session_headers(user) -> dict:
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.save()
    return {"Cookie": f"sessionid={session.session_key}; csrftoken={CSRF}", "X-CSRFToken": CSRF}


@pytest.fixture(autouse=True)
def _keep_the_test_connection():
    """Like Django's test client: the in-process WSGI calls must not close the test's connection."""
    from django.core import signals
    from django.db import close_old_connections

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def world(user, project, plan, image, simulator):
    services.vm_request_create(user=user, project=project, plan=plan, image=image, hypervisor=simulator, name="st-1")
    return user


@pytest.fixture(params=["member", "staff"])
def auth_headers(request, world):
    cache.clear()
    user = world if request.param == "member" else UserFactory(is_staff=True)
    return _session_headers(user)


@pytest.mark.django_db
@schema.parametrize()
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_api_conforms_to_its_schema(case, auth_headers):
    response = case.call(headers=auth_headers)
    case.validate_response(response)
