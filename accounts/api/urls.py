from rest_framework.routers import SimpleRouter

from . import ssh_keys, views

router = SimpleRouter(trailing_slash=True)
router.register("projects", views.ProjectViewSet, basename="project")
router.register(r"projects/(?P<project_pk>\d+)/members", views.MemberViewSet, basename="project-member")
router.register(r"projects/(?P<project_pk>\d+)/invitations", views.InvitationViewSet, basename="project-invitation")
router.register("tokens", views.AccessTokenViewSet, basename="token")
router.register("ssh-keys", ssh_keys.SSHKeyViewSet, basename="ssh-key")
urlpatterns = router.urls
