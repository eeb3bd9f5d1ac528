"""Team projects, roles, members and invitations (services and the portal)."""

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from accounts import selectors, services
from accounts.choices import ProjectKind, Role
from accounts.models import Invitation, Membership, Project
from audit.models import AuditEvent
from controlplane.errors import Conflict, Forbidden, NotFound
from tests.fixtures.accounts import add_member
from tests.fixtures.factories import UserFactory

SIGNUP_PASSWORD = "a-long-and-unusual-passphrase-7"


@pytest.fixture
def people(team_project):
    """An admin, a member and a viewer of the team project (the ``user`` fixture owns it)."""
    return {role: add_member(team_project, UserFactory(), role).user for role in (Role.ADMIN, Role.MEMBER, Role.VIEWER)}


@pytest.mark.django_db
def test_create_team_project_in_the_portal(client, user):
    client.force_login(user)
    response = client.post("/projects/new/", {"name": "Lab 7"})
    project = Project.objects.get(name="Lab 7")
    assert response["Location"] == f"/projects/{project.slug}/"
    assert project.kind == ProjectKind.TEAM and selectors.project_role(user=user, project=project) == Role.OWNER
    page = client.get("/projects/").content.decode()
    assert "Lab 7" in page and "owner" in page


@pytest.mark.django_db
def test_admins_manage_members_but_only_owners_touch_owners(user, team_project, people):
    admin, member, viewer = people[Role.ADMIN], people[Role.MEMBER], people[Role.VIEWER]
    member_ms = Membership.objects.get(project=team_project, user=member)
    owner_ms = Membership.objects.get(project=team_project, user=user)
    # A viewer or member cannot change roles
    for actor in (viewer, member):
        with pytest.raises(Forbidden):
            services.membership_role_change(membership=member_ms, actor=actor, role=Role.VIEWER)
    # An admin can demote a member, but cannot make an owner or touch the owner
    services.membership_role_change(membership=member_ms, actor=admin, role=Role.VIEWER)
    with pytest.raises(Forbidden):
        services.membership_role_change(membership=member_ms, actor=admin, role=Role.OWNER)
    with pytest.raises(Forbidden):
        services.membership_remove(membership=owner_ms, actor=admin)
    # The owner can promote
    services.membership_role_change(membership=member_ms, actor=user, role=Role.OWNER)
    assert AuditEvent.objects.filter(action="member.role_changed").count() == 2
    # A non-member does not learn the project exists
    with pytest.raises(NotFound):
        services.membership_remove(membership=member_ms, actor=UserFactory())


@pytest.mark.django_db
def test_the_last_owner_cannot_be_demoted_or_removed_or_leave(user, team_project, people):
    owner_ms = Membership.objects.get(project=team_project, user=user)
    with pytest.raises(Conflict):
        services.membership_role_change(membership=owner_ms, actor=user, role=Role.ADMIN)
    with pytest.raises(Conflict):
        services.membership_remove(membership=owner_ms, actor=user)
    # With a second owner, the first can step down
    admin_ms = Membership.objects.get(project=team_project, user=people[Role.ADMIN])
    services.membership_role_change(membership=admin_ms, actor=user, role=Role.OWNER)
    services.membership_role_change(membership=owner_ms, actor=user, role=Role.ADMIN)
    assert selectors.project_role(user=user, project=team_project) == Role.ADMIN


@pytest.mark.django_db
def test_anyone_can_leave_and_admins_remove_members(user, team_project, people):
    viewer_ms = Membership.objects.get(project=team_project, user=people[Role.VIEWER])
    services.membership_remove(membership=viewer_ms, actor=people[Role.VIEWER])
    member_ms = Membership.objects.get(project=team_project, user=people[Role.MEMBER])
    services.membership_remove(membership=member_ms, actor=people[Role.ADMIN])
    assert set(team_project.members.all()) == {user, people[Role.ADMIN]}
    events = AuditEvent.objects.filter(action="member.removed").order_by("id")
    assert [e.details.get("left", False) for e in events] == [True, False]


@pytest.mark.django_db
def test_portal_members_page_changes_roles_and_removes(client, user, team_project, people):
    client.force_login(user)
    member = people[Role.MEMBER]
    ms = Membership.objects.get(project=team_project, user=member)
    page = client.get(f"/projects/{team_project.slug}/").content.decode()
    assert member.email in page and "Send invitation" in page
    client.post(f"/projects/{team_project.slug}/members/{ms.pk}/role/", {"role": "admin"})
    ms.refresh_from_db()
    assert ms.role == Role.ADMIN
    # The last owner removing themselves: refused with a message, not an error page
    own = Membership.objects.get(project=team_project, user=user)
    response = client.post(f"/projects/{team_project.slug}/members/{own.pk}/remove/", follow=True)
    assert response.status_code == 200 and b"last owner" in response.content
    client.post(f"/projects/{team_project.slug}/members/{ms.pk}/remove/")
    assert not Membership.objects.filter(pk=ms.pk).exists()


@pytest.mark.django_db
def test_members_page_has_a_bounded_query_count(client, user, team_project, django_assert_max_num_queries):
    for _ in range(20):
        add_member(team_project, UserFactory(), Role.MEMBER)
    client.force_login(user)
    with django_assert_max_num_queries(16):
        assert client.get(f"/projects/{team_project.slug}/").status_code == 200


def _accept_link(message) -> str:
    return re.search(r"http://[^/\s]+(/invitations/\S+/)", message.body).group(1)


@pytest.mark.django_db
def test_invite_an_existing_user_who_accepts_by_link(client, user, team_project, django_capture_on_commit_callbacks):
    invitee = UserFactory(email="friend@example.com")
    # Given an invitation sent from the portal (the mail goes out on commit)
    client.force_login(user)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/projects/{team_project.slug}/invitations/", {"email": "Friend@Example.com", "role": "viewer"})
    invitation = Invitation.objects.get()
    assert invitation.email == "friend@example.com" and len(mail.outbox) == 1
    link = _accept_link(mail.outbox[0])
    assert link.split("/")[2] not in invitation.token_hash  # only the hash is stored
    # When the invitee opens the link while logged in and accepts
    client.force_login(invitee)
    assert b"Accept and join" in client.get(link).content
    response = client.post(link)
    # Then they are a viewer of the project, and the link is used up
    assert response["Location"] == f"/projects/{team_project.slug}/"
    assert selectors.project_role(user=invitee, project=team_project) == Role.VIEWER
    assert b"already been used" in client.get(link).content
    assert [e.action for e in AuditEvent.objects.filter(action__startswith="member.").order_by("id")] == [
        "member.invited",
        "member.added",
    ]


@pytest.mark.django_db
def test_an_invitation_is_only_for_the_invited_address(client, user, team_project):
    _, token = services.invitation_create(project=team_project, actor=user, email="friend@example.com")
    stranger = UserFactory()
    client.force_login(stranger)
    assert b"Log out and log in" in client.get(f"/invitations/{token}/").content
    assert client.post(f"/invitations/{token}/").status_code == 403
    assert not team_project.members.filter(pk=stranger.pk).exists()


@pytest.mark.django_db
def test_a_new_person_joins_when_their_address_is_verified_after_sign_up(
    client, user, team_project, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        services.invitation_create(project=team_project, actor=user, email="newbie@example.com", role=Role.MEMBER)
    link = _accept_link(mail.outbox[0])
    # The link tells an anonymous visitor to sign up with the address
    assert b"sign up" in client.get(link).content
    client.post(
        "/accounts/signup/", {"email": "newbie@example.com", "password1": SIGNUP_PASSWORD, "password2": SIGNUP_PASSWORD}
    )
    verify = re.search(r"http://[^/\s]+(/accounts/confirm-email/\S+/)", mail.outbox[-1].body).group(1)
    client.post(verify)
    newbie = team_project.members.get(email="newbie@example.com")
    assert selectors.project_role(user=newbie, project=team_project) == Role.MEMBER
    assert newbie.projects.count() == 2  # and their own personal project


@pytest.mark.django_db
def test_expired_revoked_and_reissued_invitations(client, user, team_project, people):
    invitee = UserFactory(email="late@example.com")
    invitation, token = services.invitation_create(project=team_project, actor=user, email=invitee.email)
    Invitation.objects.filter(pk=invitation.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(Conflict):
        services.invitation_accept(invitation=invitation, user=invitee)
    # Inviting again replaces the old one with a fresh link
    second, token2 = services.invitation_create(project=team_project, actor=user, email=invitee.email)
    invitation.refresh_from_db()
    assert invitation.revoked_at is not None and token2 != token
    # A withdrawn invitation cannot be used; a viewer cannot withdraw
    with pytest.raises(Forbidden):
        services.invitation_revoke(invitation=second, actor=people[Role.VIEWER])
    services.invitation_revoke(invitation=second, actor=people[Role.ADMIN])
    with pytest.raises(Conflict):
        services.invitation_accept(invitation=second, user=invitee)


@pytest.mark.django_db
def test_invitation_rules(user, team_project, people):
    with pytest.raises(Forbidden):
        services.invitation_create(project=team_project, actor=people[Role.MEMBER], email="x@example.com")
    with pytest.raises(Forbidden):
        services.invitation_create(project=team_project, actor=people[Role.ADMIN], email="x@example.com", role="owner")
    with pytest.raises(Conflict):
        services.invitation_create(project=team_project, actor=user, email=people[Role.VIEWER].email)
    with pytest.raises(Conflict):
        services.invitation_create(project=user.projects.get(kind="personal"), actor=user, email="x@example.com")


@pytest.mark.django_db
def test_project_deletion_is_for_owners_of_team_projects(client, user, team_project, people):
    with pytest.raises(Forbidden):
        services.project_delete(project=team_project, actor=people[Role.ADMIN])
    with pytest.raises(Conflict):
        services.project_delete(project=user.projects.get(kind="personal"), actor=user)
    client.force_login(user)
    assert client.post(f"/projects/{team_project.slug}/delete/")["Location"] == "/projects/"
    assert not Project.objects.filter(pk=team_project.pk).exists()
    assert AuditEvent.objects.get(action="project.deleted").project_id == team_project.pk


@pytest.mark.django_db
def test_a_project_with_vms_cannot_be_deleted(user, team_project, plan, image, simulator):
    from compute.models import VirtualMachine

    VirtualMachine.objects.create(
        project=team_project, owner=user, name="web", plan=plan, image=image, hypervisor=simulator
    )
    with pytest.raises(Conflict, match="virtual machines"):
        services.project_delete(project=team_project, actor=user)
    assert Project.objects.filter(pk=team_project.pk).exists()
