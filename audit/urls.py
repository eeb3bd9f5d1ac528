from django.urls import path

from . import views

app_name = "audit"
urlpatterns = [
    path("", views.project_events, name="project_events"),
]
