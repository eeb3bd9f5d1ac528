from rest_framework.routers import SimpleRouter

from controlplane.api import SLUG_PATTERN

from . import views

router = SimpleRouter(trailing_slash=True)
router.register("projects", views.ProjectViewSet, basename="project")
router.register(rf"projects/(?P<slug>{SLUG_PATTERN})/members", views.MemberViewSet, basename="project-member")
router.register(
    rf"projects/(?P<slug>{SLUG_PATTERN})/invitations", views.InvitationViewSet, basename="project-invitation"
)
router.register("tokens", views.AccessTokenViewSet, basename="token")
urlpatterns = router.urls
