"""Writes of the accounts app: users, projects and members, invitations, API
tokens, two-factor devices. Services take the acting user and check its role
(accounts.selectors.project_require_role); they raise controlplane.errors."""

from .auth import login_failure_record, login_record, logout_record
from .invitations import invitation_accept, invitation_accept_for_email, invitation_create, invitation_revoke
from .projects import (
    membership_add,
    membership_remove,
    membership_role_change,
    project_create,
    project_delete,
    project_update,
)
from .sessions import session_revoke, session_touch
from .ssh_keys import ssh_key_create, ssh_key_delete
from .tokens import token_create, token_revoke, token_touch
from .two_factor import backup_codes_regenerate, totp_device_confirm, two_factor_disable
from .users import (
    user_create,
    user_deactivate,
    user_email_verified,
    user_privileges_record,
    user_profile_update,
    user_reactivate,
    user_register,
)

__all__ = [
    "backup_codes_regenerate",
    "invitation_accept",
    "invitation_accept_for_email",
    "invitation_create",
    "invitation_revoke",
    "login_failure_record",
    "login_record",
    "logout_record",
    "membership_add",
    "membership_remove",
    "membership_role_change",
    "project_create",
    "project_delete",
    "project_update",
    "session_revoke",
    "session_touch",
    "ssh_key_create",
    "ssh_key_delete",
    "token_create",
    "token_revoke",
    "token_touch",
    "totp_device_confirm",
    "two_factor_disable",
    "user_create",
    "user_deactivate",
    "user_email_verified",
    "user_privileges_record",
    "user_profile_update",
    "user_reactivate",
    "user_register",
]
