"""The dashboard, the project switcher and the request-a-VM wizard."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from accounts.choices import Role, role_at_least
from accounts.selectors import project_list_for_user, ssh_key_list_available
from accounts.views.common import with_project
from billing import selectors as billing_selectors
from billing.periods import month_of
from billing.services import wallet_check_can_afford
from compute import selectors as compute_selectors
from compute import services as compute_services
from compute.choices import RequestStatus
from controlplane.errors import Conflict, InvalidInput, PaymentRequired

from .context import SESSION_KEY
from .forms import wizard_form

# Where the switcher sends you for each section (see context.SECTIONS).
SECTION_URLS = {
    "dashboard": "portal:dashboard",
    "vms": "compute:vm_list",
    "requests": "compute:request_list",
    "billing": "billing:wallet",
    "members": "accounts:project_detail",
    "audit": "audit:project_events",
    "webhooks": "notifications:webhooks",
}


@login_required
def home(request):
    """The dashboard of the project last visited (the personal one at first)."""
    projects = project_list_for_user(user=request.user).order_by("kind", "name")
    remembered = request.session.get(SESSION_KEY)
    project = projects.filter(slug=remembered).first() if remembered else None
    project = project or projects.first()
    if project is None:
        return redirect("accounts:project_list")
    return redirect("portal:dashboard", slug=project.slug)


@login_required
def switch(request):
    """The project switcher (a GET form, so it works without JavaScript)."""
    slug = request.GET.get("project", "")
    project = project_list_for_user(user=request.user).filter(slug=slug).first()
    if project is None:
        return redirect("portal:home")
    request.session[SESSION_KEY] = project.slug
    try:
        url = reverse(SECTION_URLS.get(request.GET.get("section", ""), "portal:dashboard"), args=[project.slug])
    except NoReverseMatch:
        url = reverse("portal:dashboard", args=[project.slug])
    return redirect(url)


@with_project()
def dashboard(request, project):
    operations = compute_selectors.operation_recent_for_project(project=project, limit=8)
    busy = any(op.is_active for op in operations)
    if request.htmx:  # the polled "recent operations" part only
        context = {"project": project, "operations": operations, "busy": busy}
        return render(request, "portal/_dashboard_operations.html", context)
    context = {
        "project": project,
        "counts": compute_selectors.vm_status_counts(project=project),
        "pending_requests": compute_selectors.vm_request_list_for_project(project=project)
        .filter(status=RequestStatus.PENDING)
        .count(),
        "wallet": billing_selectors.wallet_get(project=project),
        "month": month_of(timezone.now()),
        "month_usage": billing_selectors.month_usage_total(project=project, month=month_of(timezone.now())),
        "operations": operations,
        "busy": busy,
        "can_request": role_at_least(project.role, Role.MEMBER),
    }
    return render(request, "portal/dashboard.html", context)


def _review(project, data) -> dict:
    """What the review step shows: prices with GST and the quota and balance checks."""
    plan = data["plan"]
    price = billing_selectors.plan_price_for_project(plan=plan, project=project)
    problems = []
    shortfall = compute_selectors.quota_shortfall(project=project, plan=plan)
    if shortfall:
        problems.append(f"Quota: {shortfall} Delete a VM or ask an operator to raise the quota.")
    try:
        wallet_check_can_afford(project=project, plan=plan)
    except PaymentRequired as exc:
        problems.append(f"Balance: {exc.message}")
    return {
        "price": price,
        "problems": problems,
        "profile_missing": billing_selectors.profile_get(project=project) is None,
    }


@with_project(Role.MEMBER)
def request_new(request, project):
    """Choose (plan, image, region, name, key) → review (price with GST, quota,
    balance) → confirm. Plain forms; JavaScript only filters the image list."""
    step = request.POST.get("step", "") if request.method == "POST" else ""
    initial = {"plan": request.GET.get("plan")} if request.GET.get("plan") else None
    ssh_keys = list(ssh_key_list_available(user=request.user, project=project))
    form = wizard_form(request.POST if step in ("review", "confirm") else None, initial=initial, ssh_keys=ssh_keys)
    if step == "edit":
        form = wizard_form(initial=request.POST.dict(), ssh_keys=ssh_keys)
    context = {"project": project, "form": form}
    if step in ("review", "confirm") and form.is_valid():
        if step == "confirm":
            try:
                vm_request = compute_services.vm_request_create(
                    user=request.user, project=project, request=request, **form.cleaned_data
                )
            except InvalidInput as exc:
                for field, errors in (exc.fields or {}).items():
                    form.add_error(field if field in form.fields else None, errors)
                if not exc.fields:
                    form.add_error(None, exc.message)
            except (Conflict, PaymentRequired) as exc:
                field = next((name for name in exc.fields or {} if name in form.fields), None)
                form.add_error(field, exc.message)
            else:
                return _requested(request, project, vm_request)
        else:
            context.update(_review(project, form.cleaned_data))
            return render(request, "portal/request_review.html", context)
    plans = list(form.fields["plan"].queryset)
    prices = billing_selectors.plan_prices_for_project(plans=plans, project=project)
    context["plans"] = [(plan, prices[plan.pk]) for plan in plans]
    context["images"] = list(form.fields["image"].queryset)
    return render(request, "portal/request_new.html", context)


def _requested(request, project, vm_request):
    if vm_request.status == RequestStatus.APPROVED:
        messages.success(request, f"{vm_request.name} is being built.")
        return redirect("compute:vm_detail", slug=project.slug, pk=vm_request.vm.pk)
    messages.success(request, f"Request for {vm_request.name} sent: an operator approves it, and you get an email.")
    return redirect("compute:request_list", slug=project.slug)
