"""Issue 17 (chaos run, PostgreSQL restart): a request that finds the database gone answers
503 with Retry-After, never a 500 — in the API (JSON error body) and in the portal (a page that
needs no database). Real PostgreSQL: the connection is refused by a closed port, or ended by
the server (``pg_terminate_backend``, the FATAL a restart sends)."""

import socket

import psycopg
import pytest
from django.db import OperationalError, connection
from django.test import Client
from rest_framework.test import APIClient

from accounts import services as account_services
from controlplane.dbroles import is_busy_error, is_unavailable_error
from tests.fixtures.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens once the socket is closed


class _DatabaseGone:
    """This thread's connection points at a port nothing listens on until exit."""

    def __enter__(self):
        self.port = connection.settings_dict["PORT"]
        connection.close()
        connection.settings_dict["PORT"] = str(_closed_port())

    def __exit__(self, *exc):
        connection.close()
        connection.settings_dict["PORT"] = self.port


def test_the_api_answers_503_with_retry_after_while_the_database_is_gone():
    raw = account_services.token_create(user=UserFactory(), name="outage")[1]
    client = APIClient(raise_request_exception=False)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert client.get("/api/v1/virtual-machines/").status_code == 200

    with _DatabaseGone():
        response = client.get("/api/v1/virtual-machines/")
        post = client.post("/api/v1/vm-requests/", {"name": "x"}, format="json")

    for answer in (response, post):
        assert answer.status_code == 503, answer.content
        assert answer["Retry-After"] == "5"
        assert answer.json()["error"]["code"] == "database_unavailable"
        assert "try again in a few seconds" in answer.json()["error"]["message"]
    # and once it is back, the same request works again
    assert client.get("/api/v1/virtual-machines/").status_code == 200


def test_a_portal_page_answers_503_without_touching_the_database():
    user = UserFactory()
    client = Client(raise_request_exception=False)
    client.force_login(user)

    with _DatabaseGone():  # the session middleware's read fails before any view runs
        response = client.get("/projects/")

    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert b"The database is unavailable for a moment" in response.content


def test_a_connection_the_server_ends_is_unavailable_a_lock_timeout_is_busy():
    # A second real connection, ended by the server as a restart or failover ends it (57P01)
    other = connection.copy()
    other.ensure_connection()
    with other.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    with pytest.raises(OperationalError) as ended:
        with other.cursor() as cursor:
            cursor.execute("SELECT 1")
    other.close()
    assert isinstance(ended.value.__cause__, psycopg.OperationalError)
    assert is_unavailable_error(ended.value) and not is_busy_error(ended.value)

    # A lock timeout is "busy" (someone holds the row), not "unavailable"
    with pytest.raises(OperationalError) as timeout:
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '1ms'; SELECT pg_sleep(0); SET statement_timeout = '10ms'")
            cursor.execute("SELECT pg_sleep(1)")
    connection.close()
    assert is_busy_error(timeout.value) and not is_unavailable_error(timeout.value)
