"""allauth's mail carries the operator's name (subject, greeting, signature), a plain-text
and an HTML version, and links to SITE_URL; no "Successfully signed in" before the second
factor, one primary button on the code page."""

import re

import pytest
from django.contrib.messages import get_messages
from django.core import mail

from tests.fixtures.accounts import enrol

PASSWORD = "a-long-and-unusual-passphrase-7"


@pytest.mark.django_db
def test_verification_mail_is_branded_in_text_and_html(client, settings):
    settings.OPERATOR_NAME = "Nimbus Hosting"
    settings.SITE_URL = "https://cloud.example.com"
    client.post("/accounts/signup/", {"email": "new@example.com", "password1": PASSWORD, "password2": PASSWORD})
    [message] = mail.outbox
    assert message.subject == "[Nimbus Hosting] Confirm your email address"
    assert message.body.startswith("Hello from Nimbus Hosting,")
    assert "https://cloud.example.com" in message.body
    assert "Hello from testserver" not in message.body and "example.com!" not in message.body
    link = re.search(r"http://testserver/accounts/confirm-email/\S+/", message.body).group(0)
    [(html, mimetype)] = message.alternatives
    assert mimetype == "text/html"
    assert "<h1" in html and "Confirm your email address" in html and "Nimbus Hosting" in html
    assert f'<a href="{link}"' in html


@pytest.mark.django_db
def test_password_reset_mail_is_branded(client, user, settings):
    settings.OPERATOR_NAME = "Nimbus Hosting"
    client.post("/accounts/password/reset/", {"email": user.email})
    [message] = mail.outbox
    assert message.subject == "[Nimbus Hosting] Reset your password"
    assert "the Nimbus Hosting account of this address" in message.body
    assert message.alternatives and "Reset your password" in message.alternatives[0][0]


@pytest.mark.django_db
def test_signed_in_is_said_after_the_second_factor_not_before(client, user):
    codes = enrol(user)
    response = client.post("/accounts/login/", {"login": user.email, "password": "correct-horse-battery"})
    assert response.status_code == 302
    page = client.get(response["Location"], follow=True)
    assert not [m for m in get_messages(page.wsgi_request) if "signed in" in str(m).lower()]
    html = page.content.decode()
    assert html.count('class="primary"') == 1  # Continue; "Cancel and log out" is plain
    response = client.post("/accounts/2fa/verify/", {"otp_token": codes.next(), "next": "/projects/"})
    assert response.status_code == 302
    assert [str(m) for m in get_messages(response.wsgi_request)] == [f"Signed in as {user.email}."]
