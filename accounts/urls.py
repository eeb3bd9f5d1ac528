"""Portal pages of the accounts app. allauth's pages (login, sign-up, password,
email) are mounted at /accounts/ by controlplane/urls.py."""

from django.urls import path

from .views import profile, projects, sessions, ssh_keys, tokens, two_factor

app_name = "accounts"
urlpatterns = [
    path("accounts/2fa/", two_factor.two_factor, name="two_factor"),
    path("accounts/2fa/setup/", two_factor.two_factor_setup, name="two_factor_setup"),
    path("accounts/2fa/verify/", two_factor.two_factor_verify, name="two_factor_verify"),
    path("accounts/2fa/backup-codes/", two_factor.two_factor_backup_codes, name="two_factor_backup_codes"),
    path(
        "accounts/2fa/backup-codes/new/",
        two_factor.two_factor_backup_codes_regenerate,
        name="two_factor_backup_codes_regenerate",
    ),
    path("accounts/2fa/remove/", two_factor.two_factor_disable, name="two_factor_disable"),
    path("accounts/tokens/", tokens.token_list, name="token_list"),
    path("accounts/tokens/new/", tokens.token_create, name="token_create"),
    path("accounts/tokens/<int:pk>/revoke/", tokens.token_revoke, name="token_revoke"),
    path("accounts/profile/", profile.profile, name="profile"),
    path("accounts/ssh-keys/", ssh_keys.ssh_key_list, name="ssh_key_list"),
    path("accounts/ssh-keys/new/", ssh_keys.ssh_key_create, name="ssh_key_create"),
    path("accounts/ssh-keys/<int:pk>/delete/", ssh_keys.ssh_key_delete, name="ssh_key_delete"),
    path("accounts/sessions/", sessions.session_list, name="session_list"),
    path("accounts/sessions/<int:pk>/revoke/", sessions.session_revoke, name="session_revoke"),
    path("projects/", projects.project_list, name="project_list"),
    path("projects/new/", projects.project_create, name="project_create"),
    path("projects/<slug:slug>/", projects.project_detail, name="project_detail"),
    path("projects/<slug:slug>/settings/", projects.project_settings, name="project_settings"),
    path("projects/<slug:slug>/delete/", projects.project_delete, name="project_delete"),
    path("projects/<slug:slug>/members/<int:pk>/role/", projects.member_role, name="member_role"),
    path("projects/<slug:slug>/members/<int:pk>/remove/", projects.member_remove, name="member_remove"),
    path("projects/<slug:slug>/invitations/", projects.invitation_create, name="invitation_create"),
    path("projects/<slug:slug>/invitations/<int:pk>/revoke/", projects.invitation_revoke, name="invitation_revoke"),
    path("invitations/<str:token>/", projects.invitation_accept, name="invitation_accept"),
]
