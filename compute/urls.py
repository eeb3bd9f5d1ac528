from django.urls import path

from . import console_views, views, views_backups, views_batches, views_capacity, views_metrics

app_name = "compute"
urlpatterns = [
    path("operators/capacity/", views_capacity.capacity, name="capacity"),
    path("projects/<slug:slug>/vms/", views.vm_list, name="vm_list"),
    path("projects/<slug:slug>/vms/<int:pk>/", views.vm_detail, name="vm_detail"),
    path("projects/<slug:slug>/vms/<int:pk>/power/", views.vm_power, name="vm_power"),
    path("projects/<slug:slug>/vms/<int:pk>/metrics/", views_metrics.vm_metrics, name="vm_metrics"),
    path("projects/<slug:slug>/vms/<int:pk>/alerts/", views_metrics.alert_rule_add, name="alert_rule_add"),
    path(
        "projects/<slug:slug>/vms/<int:pk>/alerts/<int:rule_pk>/delete/",
        views_metrics.alert_rule_delete,
        name="alert_rule_delete",
    ),
    path("projects/<slug:slug>/vms/<int:pk>/delete/", views.vm_delete, name="vm_delete"),
    path("projects/<slug:slug>/vms/<int:pk>/console/", console_views.vm_console, name="vm_console"),
    path("projects/<slug:slug>/vms/<int:pk>/console/token/", console_views.vm_console_token, name="vm_console_token"),
    path("console/", console_views.console_link, name="console_link"),
    path("console/vm/<int:pk>/", console_views.operator_console, name="operator_console"),
    path("console/vm/<int:pk>/token/", console_views.operator_console_token, name="operator_console_token"),
    path("projects/<slug:slug>/vms/<int:pk>/snapshots/", views.vm_snapshot_create, name="vm_snapshot_create"),
    path("projects/<slug:slug>/vms/<int:pk>/ptr/", views.vm_ptr_set, name="vm_ptr_set"),
    path("projects/<slug:slug>/vms/<int:pk>/extra-ips/", views.vm_extra_ip, name="vm_extra_ip"),
    path(
        "projects/<slug:slug>/vms/<int:pk>/snapshots/<int:snapshot_pk>/revert/",
        views.vm_snapshot_revert,
        name="vm_snapshot_revert",
    ),
    path(
        "projects/<slug:slug>/vms/<int:pk>/snapshots/<int:snapshot_pk>/delete/",
        views.vm_snapshot_delete,
        name="vm_snapshot_delete",
    ),
    path("projects/<slug:slug>/vms/<int:pk>/backups/", views_backups.vm_backup_create, name="vm_backup_create"),
    path(
        "projects/<slug:slug>/vms/<int:pk>/backups/<int:backup_pk>/restore/",
        views_backups.vm_backup_restore,
        name="vm_backup_restore",
    ),
    path(
        "projects/<slug:slug>/vms/<int:pk>/backups/<int:backup_pk>/delete/",
        views_backups.vm_backup_delete,
        name="vm_backup_delete",
    ),
    path(
        "projects/<slug:slug>/vms/<int:pk>/backup-schedule/",
        views_backups.vm_backup_schedule,
        name="vm_backup_schedule",
    ),
    path("projects/<slug:slug>/vms/<int:pk>/resize/", views.vm_resize, name="vm_resize"),
    path("projects/<slug:slug>/vms/<int:pk>/rebuild/", views.vm_rebuild, name="vm_rebuild"),
    path("projects/<slug:slug>/operations/<int:pk>/retry/", views.operation_retry, name="operation_retry"),
    path("projects/<slug:slug>/operations/<int:pk>/cancel/", views.operation_cancel, name="operation_cancel"),
    path("projects/<slug:slug>/requests/", views.request_list, name="request_list"),
    path("projects/<slug:slug>/requests/<int:pk>/cancel/", views.request_cancel, name="request_cancel"),
    path("projects/<slug:slug>/batches/", views_batches.batch_list, name="batch_list"),
    path("projects/<slug:slug>/batches/new/", views_batches.batch_new, name="batch_new"),
]
