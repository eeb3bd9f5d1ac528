from django.urls import path
from rest_framework.routers import DefaultRouter

from . import console, views

router = DefaultRouter(trailing_slash=True)
router.register("plans", views.PlanViewSet, basename="plan")
router.register("images", views.ImageViewSet, basename="image")
router.register("hypervisors", views.HypervisorViewSet, basename="hypervisor")
router.register("vm-requests", views.VMRequestViewSet, basename="vmrequest")
router.register("virtual-machines", views.VirtualMachineViewSet, basename="virtualmachine")
router.register("operations", views.OperationViewSet, basename="operation")
urlpatterns = [
    path(
        "virtual-machines/<int:pk>/console/", console.VirtualMachineConsoleApi.as_view(), name="virtualmachine-console"
    ),
    *router.urls,
]
