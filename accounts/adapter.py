"""allauth hooks: every sign-up (form or Google) goes through
accounts.services.user_register, so every new user gets a personal project."""

from allauth.account.adapter import DefaultAccountAdapter, get_adapter
from allauth.account.models import EmailAddress
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string

from . import selectors, services

LOGGED_IN_MESSAGE = "account/messages/logged_in.txt"


class AccountAdapter(DefaultAccountAdapter):
    def add_message(self, request, level, message_template=None, message_context=None, extra_tags="", message=None):
        """No "Successfully signed in" while the second factor is still to come: the code
        page says "Signed in." once the code is accepted."""
        if message_template == LOGGED_IN_MESSAGE and selectors.user_has_2fa(user=request.user):
            return
        super().add_message(request, level, message_template, message_context, extra_tags, message)

    # Mail (verification, password reset, security notices): the operator's name in the
    # subject and greeting instead of the host name, a plain-text body from allauth's
    # templates (overridden in accounts/templates/account/email/) and an HTML version of it
    # in the portal's email layout.
    def format_email_subject(self, subject):
        return f"[{settings.OPERATOR_NAME}] {subject}"

    def send_mail(self, template_prefix, email, context):
        context = {"operator": settings.OPERATOR_NAME, "site_url": settings.SITE_URL.rstrip("/"), **context}
        super().send_mail(template_prefix, email, context)

    def render_mail(self, template_prefix, email, context, headers=None):
        message = super().render_mail(template_prefix, email, context, headers=headers)
        if isinstance(message, EmailMultiAlternatives) and not message.alternatives:
            subject = message.subject.removeprefix(f"[{settings.OPERATOR_NAME}] ")
            html = render_to_string("account/email/message.html", {**context, "subject": subject, "text": message.body})
            message.attach_alternative(html, "text/html")
        return message

    def save_user(self, request, user, form, commit=True):
        user = super().save_user(request, user, form, commit=False)
        if commit:
            services.user_register(user=user, request=request)
        return user

    def confirm_email(self, request, email_address):
        """Verifying an address also accepts the invitations sent to it."""
        confirmed = super().confirm_email(request, email_address)
        if confirmed:
            services.invitation_accept_for_email(user=email_address.user, email=email_address.email, request=request)
            services.user_email_verified(user=email_address.user, email=email_address.email, request=request)
        return confirmed


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    def populate_user(self, request, sociallogin, data):
        user = super().populate_user(request, sociallogin, data)
        user.full_name = (data.get("name") or " ".join(filter(None, [data.get("first_name"), data.get("last_name")])))[
            :150
        ]
        return user

    @transaction.atomic
    def save_user(self, request, sociallogin, form=None):
        user = sociallogin.user
        user.set_unusable_password()
        account_adapter = get_adapter(request)
        if form:
            account_adapter.save_user(request, user, form)
        else:
            account_adapter.populate_username(request, user)
            services.user_register(user=user, request=request)
        sociallogin.save(request)
        for address in EmailAddress.objects.filter(user=user, verified=True):
            services.invitation_accept_for_email(user=user, email=address.email, request=request)
            services.user_email_verified(user=user, email=address.email, request=request)
        return user
