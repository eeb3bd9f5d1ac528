"""allauth hooks: every sign-up (form or Google) goes through
accounts.services.user_register, so every new user gets a personal project."""

from allauth.account.adapter import DefaultAccountAdapter, get_adapter
from allauth.account.models import EmailAddress
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from django.db import transaction

from . import services


class AccountAdapter(DefaultAccountAdapter):
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
