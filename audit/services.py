import hashlib
import json

from django.db import transaction
from django.utils import timezone

from .models import AuditEvent

GENESIS = "0" * 64


def _actor_fields(actor) -> tuple[object | None, str]:
    if actor is None:
        return None, "system"
    if isinstance(actor, str):
        return None, actor
    return actor, getattr(actor, "email", str(actor))


def canonical(event: dict) -> str:
    return json.dumps(event, sort_keys=True, separators=(",", ":"), default=str)


@transaction.atomic
def record(*, actor, action: str, target=None, project=None, details: dict | None = None, request=None) -> AuditEvent:
    """Append one event to the chain. Minimal version; see issue #9 for the full one."""
    user, actor_name = _actor_fields(actor)
    last = AuditEvent.objects.select_for_update().order_by("-id").only("hash").first()
    prev_hash = last.hash if last else GENESIS
    fields = {
        "created_at": timezone.now(),
        "actor": actor_name,
        "action": action,
        "target_type": target._meta.label_lower if target is not None else "",
        "target_id": str(target.pk) if target is not None else "",
        "target_repr": str(target)[:255] if target is not None else "",
        "project_id": getattr(project, "pk", project),
        "details": details or {},
    }
    digest = hashlib.sha256((prev_hash + canonical(fields)).encode()).hexdigest()
    return AuditEvent.objects.create(
        actor_user=user if user and user.pk else None, prev_hash=prev_hash, hash=digest, **fields
    )
