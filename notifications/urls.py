from django.urls import path

from . import views

app_name = "notifications"
urlpatterns = [
    path("notifications/", views.notification_list, name="list"),
    path("notifications/read/", views.notification_read, name="read"),
    path("notifications/preferences/", views.preferences, name="preferences"),
    path("projects/<slug:slug>/webhooks/", views.webhook_list, name="webhooks"),
    path("projects/<slug:slug>/webhooks/<int:pk>/", views.webhook_detail, name="webhook_detail"),
    path("projects/<slug:slug>/webhooks/<int:pk>/action/", views.webhook_action, name="webhook_action"),
    path(
        "projects/<slug:slug>/webhooks/<int:pk>/deliveries/<int:delivery_pk>/redeliver/",
        views.webhook_redeliver,
        name="webhook_redeliver",
    ),
]
