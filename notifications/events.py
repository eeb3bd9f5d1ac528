"""From a committed audit event to: its event type, who is told, what they read, and
the webhook payload.

``AUDIT_ROUTES`` is the mapping table (audit action → route). Event types that have
no audit action yet (``balance.low``, ``alert.fired``) already
exist in ``EventType`` (preferences, webhook subscriptions); they flow once a service
records a matching audit action and a row is added here.
"""

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.urls import reverse

from accounts.choices import Role
from accounts.models import Membership, Project, User
from audit.choices import Action
from audit.models import AuditEvent
from billing.money import format_inr
from compute.models import VirtualMachine, VMRequest

from .choices import Audience, EventType
from .models import WebhookEndpoint


def _always(event: AuditEvent) -> bool:
    return True


def _needs_approval(event: AuditEvent) -> bool:
    return bool(event.details.get("needs_approval"))


def _decided_by_a_person(event: AuditEvent) -> bool:
    return not event.details.get("auto")


@dataclass(frozen=True)
class Route:
    event_type: str
    audience: str
    applies: Callable[[AuditEvent], bool] = _always


_FAILED = (
    Action.VM_CREATE_FAILED,
    Action.VM_START_FAILED,
    Action.VM_STOP_FAILED,
    Action.VM_REBOOT_FAILED,
    Action.VM_DELETE_FAILED,
)

AUDIT_ROUTES: dict[str, Route] = {
    Action.VM_CREATE_SUCCEEDED: Route(EventType.VM_READY, Audience.VM_OWNER),
    Action.VM_DELETE_SUCCEEDED: Route(EventType.VM_DELETED, Audience.VM_OWNER),
    **{action: Route(EventType.OPERATION_FAILED, Audience.VM_OWNER) for action in _FAILED},
    Action.VM_BACKUP_CREATE_FAILED: Route(EventType.BACKUP_FAILED, Audience.VM_OWNER),
    Action.REQUEST_CREATED: Route(EventType.APPROVAL_NEEDED, Audience.OPERATORS, _needs_approval),
    Action.REQUEST_APPROVED: Route(EventType.APPROVAL_DECIDED, Audience.REQUESTER, _decided_by_a_person),
    Action.REQUEST_REJECTED: Route(EventType.APPROVAL_DECIDED, Audience.REQUESTER),
    Action.PROJECT_SUSPENDED: Route(EventType.PROJECT_SUSPENDED, Audience.PROJECT_ADMINS),
    Action.PROJECT_UNSUSPENDED: Route(EventType.PROJECT_UNSUSPENDED, Audience.PROJECT_ADMINS),
    Action.WALLET_TOPUP: Route(EventType.PAYMENT_RECEIVED, Audience.PROJECT_ADMINS),
    Action.INVOICE_ISSUED: Route(EventType.INVOICE_ISSUED, Audience.PROJECT_ADMINS),
    Action.WEBHOOK_DISABLED: Route(EventType.WEBHOOK_DISABLED, Audience.WEBHOOK_OWNER),
}


def route_for(event: AuditEvent) -> Route | None:
    route = AUDIT_ROUTES.get(event.action)
    return route if route is not None and route.applies(event) else None


@dataclass(frozen=True)
class Message:
    title: str
    body: str
    url: str


def _target_pk(event: AuditEvent, model) -> int | None:
    if event.target_type != model._meta.label_lower or not event.target_id.isdigit():
        return None
    return int(event.target_id)


def _project_admin_ids(project_id: int | None) -> set[int]:
    if project_id is None:
        return set()
    roles = (Role.OWNER, Role.ADMIN)
    return set(Membership.objects.filter(project_id=project_id, role__in=roles).values_list("user_id", flat=True))


def recipients(event: AuditEvent, route: Route) -> list[User]:
    """Active users who get this event, by the route's audience."""
    audience = route.audience
    ids: set[int] = set()
    if audience == Audience.VM_OWNER:
        owner = VirtualMachine.objects.filter(pk=_target_pk(event, VirtualMachine)).values_list("owner_id", flat=True)
        ids = set(owner) | _project_admin_ids(event.project_id)
    elif audience == Audience.REQUESTER:
        ids = set(VMRequest.objects.filter(pk=_target_pk(event, VMRequest)).values_list("requester_id", flat=True))
    elif audience == Audience.PROJECT_ADMINS:
        ids = _project_admin_ids(event.project_id)
    elif audience == Audience.OPERATORS:
        return list(User.objects.filter(is_staff=True, is_active=True))
    elif audience == Audience.WEBHOOK_OWNER:
        endpoint = WebhookEndpoint.objects.filter(pk=_target_pk(event, WebhookEndpoint))
        ids = set(endpoint.values_list("created_by_id", flat=True))
    return list(User.objects.filter(pk__in=ids - {None}, is_active=True))


def _inr(value) -> str:
    try:
        return "₹" + format_inr(Decimal(str(value)))
    except (InvalidOperation, ValueError):
        return "₹?"


def _vm_name(event: AuditEvent) -> str:
    return event.target_repr.split(" (")[0] or "your VM"


def describe(event: AuditEvent, event_type: str, project: Project | None) -> Message:
    """Title, body and portal link a person reads (in the portal and in the email)."""
    details, slug = event.details, project.slug if project else ""
    where = f" in {project.name}" if project else ""
    vm_pk = _target_pk(event, VirtualMachine)
    vm_url = reverse("compute:vm_detail", args=[slug, vm_pk]) if slug and vm_pk else ""
    if event_type == EventType.VM_READY:
        return Message(f"VM {_vm_name(event)} is ready", f"{_vm_name(event)}{where} was built and runs.", vm_url)
    if event_type == EventType.VM_DELETED:
        return Message(f"VM {_vm_name(event)} was deleted", f"{_vm_name(event)}{where} is gone with its disks.", "")
    if event_type == EventType.OPERATION_FAILED:
        action = str(details.get("action", "operation"))
        error = details.get("error") or "no reason given"
        return Message(f"{action.capitalize()} of VM {_vm_name(event)} failed", f"{error}", vm_url)
    if event_type == EventType.BACKUP_FAILED:
        return Message(f"Backup of VM {_vm_name(event)} failed", details.get("error") or "no reason given", vm_url)
    request = None
    if event_type in (EventType.APPROVAL_NEEDED, EventType.APPROVAL_DECIDED):
        requests = VMRequest.objects.select_related("plan", "requester")
        request = requests.filter(pk=_target_pk(event, VMRequest)).first()
    if event_type == EventType.APPROVAL_NEEDED and request is not None:
        body = f"{request.requester} asks for {request.name} ({request.plan}){where}."
        return Message(f"VM request {request.name} needs approval", body, reverse("admin:compute_vmrequest_changelist"))
    if event_type == EventType.APPROVAL_DECIDED and request is not None:
        decision = "approved" if event.action == Action.REQUEST_APPROVED else "rejected"
        body = "It is being built now." if decision == "approved" else f"Reason: {details.get('reason') or '-'}"
        url = reverse("compute:request_list", args=[slug]) if slug else ""
        return Message(f"Your VM request {request.name} was {decision}", body, url)
    wallet_url = reverse("billing:wallet", args=[slug]) if slug else ""
    if event_type == EventType.PROJECT_SUSPENDED:
        reason = details.get("reason") or f"the wallet is below zero (balance {_inr(details.get('balance'))})"
        return Message(f"Project {project} is suspended", f"VMs were stopped because {reason}.", wallet_url)
    if event_type == EventType.PROJECT_UNSUSPENDED:
        return Message(f"Project {project} works again", "The suspension was lifted.", wallet_url)
    if event_type == EventType.PAYMENT_RECEIVED:
        body = f"Receipt {details.get('receipt', '-')}; balance now {_inr(details.get('balance'))}."
        return Message(f"Payment of {_inr(details.get('amount'))} received{where}", body, wallet_url)
    if event_type == EventType.INVOICE_ISSUED:
        url = reverse("billing:documents", args=[slug]) if slug else ""
        body = f"Total {_inr(details.get('total'))}."
        return Message(f"Invoice {details.get('number', '')} issued{where}", body, url)
    if event_type == EventType.WEBHOOK_DISABLED:
        body = f"{details.get('reason', '')} Fix the receiver, then enable the endpoint again."
        url = reverse("notifications:webhooks", args=[slug]) if slug else "/admin/notifications/webhookendpoint/"
        return Message(f"Webhook {details.get('url', '')} was disabled", body.strip(), url)
    return Message(EventType(event_type).label, event.target_repr, "")


def payload(event: AuditEvent, event_type: str, project: Project | None) -> dict:
    """The webhook body (Standard Webhooks shape: type, timestamp, data). ``data.event_id``
    is the audit event's id: it grows in commit order, so per VM a larger id is later."""
    return {
        "type": event_type,
        "timestamp": event.created_at.isoformat().replace("+00:00", "Z"),
        "data": {
            "event_id": event.pk,
            "action": event.action,
            "project": project.slug if project else None,
            "target": {"type": event.target_type, "id": event.target_id, "name": event.target_repr},
            "actor": event.actor,
            "details": event.details,
        },
    }
