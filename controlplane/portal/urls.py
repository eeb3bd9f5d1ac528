from django.urls import path

from . import views

app_name = "portal"
urlpatterns = [
    path("", views.home, name="home"),
    path("switch/", views.switch, name="switch"),
    path("projects/<slug:slug>/dashboard/", views.dashboard, name="dashboard"),
    path("projects/<slug:slug>/requests/new/", views.request_new, name="request_new"),
]
