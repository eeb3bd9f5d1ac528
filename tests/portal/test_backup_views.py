"""Portal: the VM page's Backups tab (back up now, restore with a fresh 2FA code, delete, the
schedule in the portal's time zone); refusals are messages, not 500s."""

import pytest

from audit.models import AuditEvent
from compute.choices import Action, BackupState, VMStatus
from compute.models import Backup, BackupSchedule, Operation, VirtualMachine
from tests.fixtures.accounts import enrol, login_verified
from tests.portal.test_day2_views import messages_of, page_url


@pytest.fixture
def vm(idle_vm):
    return idle_vm(VMStatus.ACTIVE)


def test_backups_tab_backup_now_shows_progress_then_refuses_a_second(client, user, project, vm):
    client.force_login(user)
    page = client.get(page_url(project, vm)).content.decode()
    assert 'id="backups-h"' in page and "Back up now" in page and "No backups yet." in page
    assert "No schedule: backups are taken only when you ask." in page

    response = client.post(page_url(project, vm, "backups/"), follow=True)
    assert "Backup of vm-active requested." in messages_of(response)
    operation = Operation.objects.get(vm=vm, action=Action.BACKUP_CREATE)
    backup = Backup.objects.get(vm=vm)
    assert (operation.action, operation.params["backup"], backup.state) == (Action.BACKUP_CREATE, backup.pk, "creating")
    # The page polls while it runs (the live region) and shows the backup's operation with its progress
    Operation.objects.filter(pk=operation.pk).update(state="running", progress=40)
    page = client.get(page_url(project, vm), headers={"HX-Request": "true"}).content.decode()
    assert 'hx-trigger="every 2s"' in page and "Backup 40%" in page and "Backup in progress" in page
    response = client.post(page_url(project, vm, "backups/"))
    busy = "Cannot backup vm-active: it is busy (backup in progress); wait for it to finish."
    assert messages_of(response)[-1] == busy


def test_restore_needs_a_fresh_code_and_delete_does_not(client, user, project, vm):
    codes = enrol(user)
    login_verified(client, user, codes.device, recent=False)
    backup = Backup.objects.create(vm=vm, state=BackupState.AVAILABLE, backend_ref="cp-backup-x")
    restore = page_url(project, vm, f"backups/{backup.pk}/restore/")
    response = client.post(restore)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/2fa/verify/")
    assert not Operation.objects.filter(vm=vm, action=Action.BACKUP_RESTORE).exists()
    client.post(restore, {"otp_token": codes.next()})
    assert Operation.objects.filter(vm=vm, action=Action.BACKUP_RESTORE).count() == 1
    Operation.objects.filter(vm=vm, action=Action.BACKUP_RESTORE).update(state="succeeded")
    VirtualMachine.objects.filter(pk=vm.pk).update(task_state=None)
    client.post(page_url(project, vm, f"backups/{backup.pk}/delete/"))
    assert Backup.objects.get(pk=backup.pk).state == BackupState.DELETING
    assert client.post(page_url(project, vm, "backups/999999/delete/")).status_code == 404


def test_schedule_form_saves_refuses_and_removes(client, user, project, vm, plan):
    client.force_login(user)
    url = page_url(project, vm, "backup-schedule/")
    form = {"frequency": "weekly", "weekday": "", "window_start": "01:30", "window_minutes": "90", "retention": "2"}
    response = client.post(url, {**form, "enabled": "1"}, follow=True)
    assert messages_of(response) == ["A weekly schedule needs a weekday, 0 (Monday) to 6 (Sunday)."]
    response = client.post(url, {**form, "retention": str(plan.max_backups + 1), "weekday": "2"}, follow=True)
    assert "the plan" in messages_of(response)[0] and not BackupSchedule.objects.exists()
    response = client.post(url, {**form, "weekday": "2", "enabled": "1"}, follow=True)
    assert messages_of(response) == ["Backup schedule of vm-active saved."]
    schedule = BackupSchedule.objects.get(vm=vm)
    saved = (schedule.weekday, schedule.window_start.strftime("%H:%M"), schedule.timezone)
    assert saved == (2, "01:30", "Asia/Kolkata")
    assert "Weekly on Wednesday, starting between 01:30" in response.content.decode()
    assert AuditEvent.objects.filter(action="vm.backup_schedule.set").count() == 1
    response = client.post(url, {"remove": "1"}, follow=True)
    assert not BackupSchedule.objects.exists()
    assert response.status_code == 200 and client.post(url, {**form, "window_start": "25:00"}).status_code == 302
