"""Admin: the backups list with retry (of a failed backup's operation) and cancel (of a pending
one), both through the audited operator services."""

from compute import services
from compute.choices import BackupState, OperationState, VMStatus
from compute.models import Backup, Operation
from tests.fixtures.accounts import login_operator
from tests.fixtures.factories import UserFactory


def test_backup_admin_lists_and_retries_and_cancels(client, user, idle_vm):
    vm = idle_vm(VMStatus.ACTIVE)
    operation = services.vm_backup_create(vm=vm, user=user)
    backup = Backup.objects.get(vm=vm)
    staff = UserFactory(is_staff=True, is_superuser=True)
    login_operator(client, staff)
    page = client.get("/admin/compute/backup/")
    assert page.status_code == 200 and f"Backup #{operation.pk} (pending)" in page.content.decode()

    # Cancel the pending backup: the operation is cancelled and the backup marked failed
    client.post("/admin/compute/backup/", {"action": "cancel", "_selected_action": [backup.pk]})
    operation.refresh_from_db()
    backup.refresh_from_db()
    assert operation.state == OperationState.CANCELLED and backup.state == BackupState.ERROR

    # A failed backup's operation is retried from the backups list; the row is in progress again
    Operation.objects.filter(pk=operation.pk).update(state=OperationState.FAILED)
    client.post("/admin/compute/backup/", {"action": "retry", "_selected_action": [backup.pk]})
    operation.refresh_from_db()
    backup.refresh_from_db()
    assert operation.state == OperationState.PENDING and backup.state == BackupState.CREATING
    assert client.get("/admin/compute/backupschedule/").status_code == 200
