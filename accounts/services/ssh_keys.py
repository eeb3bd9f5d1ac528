"""The SSH key library: save and delete named public keys (personal or per project)."""

from django.db import IntegrityError, transaction

import audit
from controlplane.errors import Conflict, Forbidden, InvalidInput

from ..choices import Role
from ..models import Project, SSHKey, User
from ..selectors import project_require_role
from ..sshkeys import InvalidSSHKey, ssh_key_parse

MAX_KEYS_PER_OWNER = 100


@transaction.atomic
def ssh_key_create(*, user: User, name: str, public_key: str, project: Project | None = None, request=None) -> SSHKey:
    """Save a key for the user alone, or for every member of ``project`` (members may add)."""
    name = (name or "").strip()
    errors = {}
    if not name:
        errors["name"] = ["Give the key a name."]
    elif len(name) > 100:
        errors["name"] = ["Use at most 100 characters."]
    try:
        parsed = ssh_key_parse(public_key)
    except InvalidSSHKey as exc:
        errors["public_key"] = [str(exc)]
    if errors:
        raise InvalidInput("; ".join(m for msgs in errors.values() for m in msgs), fields=errors)
    if project is not None:
        project_require_role(user=user, project=project, role=Role.MEMBER)
    owned = SSHKey.objects.filter(project=project) if project else SSHKey.objects.filter(user=user, project=None)
    if owned.count() >= MAX_KEYS_PER_OWNER:
        raise Conflict(f"There are already {MAX_KEYS_PER_OWNER} saved keys here; delete some first.")
    if owned.filter(fingerprint=parsed.fingerprint).exists():
        raise Conflict(
            f"This key ({parsed.fingerprint}) is already saved here.",
            code="key_exists",
            fields={"public_key": ["This key is already saved."]},
        )
    try:
        with transaction.atomic():
            key = SSHKey.objects.create(
                user=user,
                project=project,
                name=name,
                public_key=parsed.line,
                key_type=parsed.key_type,
                bits=parsed.bits,
                fingerprint=parsed.fingerprint,
                comment=parsed.comment,
            )
    except IntegrityError:
        raise Conflict(
            f"A key named {name!r} is already saved here.", code="name_taken", fields={"name": ["Name taken."]}
        ) from None
    audit.record(
        actor=user,
        action="ssh_key.added",
        target=key,
        project=project,
        details={"name": name, "fingerprint": parsed.fingerprint, "type": parsed.key_type, "bits": parsed.bits},
        request=request,
    )
    return key


@transaction.atomic
def ssh_key_delete(*, key: SSHKey, user: User, request=None) -> None:
    """Delete a saved key. Its owner may; in a project also an admin. VMs built with it keep their copy."""
    if key.project_id is None:
        if key.user_id != user.pk:
            raise Forbidden("This is not your key.")
    else:
        role = project_require_role(user=user, project=key.project, role=Role.MEMBER)
        if key.user_id != user.pk and role not in (Role.OWNER, Role.ADMIN):
            raise Forbidden("Only the member who saved this key or a project admin can delete it.")
    SSHKey.objects.filter(pk=key.pk).delete()
    audit.record(
        actor=user,
        action="ssh_key.removed",
        target=key,
        project=key.project_id,
        details={"name": key.name, "fingerprint": key.fingerprint},
        request=request,
    )
