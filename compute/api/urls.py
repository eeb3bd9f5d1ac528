from django.urls import path
from rest_framework.routers import DefaultRouter

from . import batches, console, metrics, views

router = DefaultRouter(trailing_slash=True)
router.register("plans", views.PlanViewSet, basename="plan")
router.register("images", views.ImageViewSet, basename="image")
router.register("hypervisors", views.HypervisorViewSet, basename="hypervisor")
router.register("vm-requests", views.VMRequestViewSet, basename="vmrequest")
router.register("vm-batches", batches.VMBatchViewSet, basename="vmbatch")
router.register("virtual-machines", views.VirtualMachineViewSet, basename="virtualmachine")
router.register("operations", views.OperationViewSet, basename="operation")
urlpatterns = router.urls + [
    path(
        "virtual-machines/<int:pk>/console/", console.VirtualMachineConsoleApi.as_view(), name="virtualmachine-console"
    ),
    path("virtual-machines/<int:pk>/metrics/", metrics.VMMetricsApi.as_view(), name="virtualmachine-metrics"),
    path("virtual-machines/<int:pk>/transfer/", metrics.VMTransferApi.as_view(), name="virtualmachine-transfer"),
    path(
        "virtual-machines/<int:pk>/alert-rules/", metrics.VMAlertRulesApi.as_view(), name="virtualmachine-alert-rules"
    ),
    path(
        "virtual-machines/<int:pk>/alert-rules/<int:rule_pk>/",
        metrics.VMAlertRuleApi.as_view(),
        name="virtualmachine-alert-rule",
    ),
]
