from rest_framework.routers import SimpleRouter

from controlplane.api import SLUG_PATTERN

from . import ssh_keys, views

router = SimpleRouter(trailing_slash=True)
router.register("projects", views.ProjectViewSet, basename="project")
router.register(rf"projects/(?P<slug>{SLUG_PATTERN})/members", views.MemberViewSet, basename="project-member")
router.register(
    rf"projects/(?P<slug>{SLUG_PATTERN})/invitations", views.InvitationViewSet, basename="project-invitation"
)
router.register("tokens", views.AccessTokenViewSet, basename="token")
router.register("ssh-keys", ssh_keys.SSHKeyViewSet, basename="ssh-key")
urlpatterns = router.urls
