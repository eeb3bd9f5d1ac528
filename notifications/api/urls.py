from django.urls import path
from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter(trailing_slash=True)
router.register("notifications", views.NotificationViewSet, basename="notification")
router.register("webhooks", views.WebhookEndpointViewSet, basename="webhook")
router.register("webhook-deliveries", views.WebhookDeliveryViewSet, basename="webhook-delivery")
urlpatterns = [
    path(
        "notification-preferences/",
        views.NotificationPreferencesApi.as_view(),
        name="notification-preferences",
    ),
    *router.urls,
]
