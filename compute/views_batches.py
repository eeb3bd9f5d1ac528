"""Portal pages for batch requests: a class's VMs in one form (``lab-{n}``), and the
batches of a project with their progress (requests pending, VMs building, active, failed).
The page polls with htmx while something is pending or building."""

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import redirect, render

from accounts.choices import Role, role_at_least
from accounts.views.common import with_project
from controlplane.errors import ServiceError

from . import selectors, services
from .models import VMBatch
from .services.batches import MAX_BATCH_SIZE

PAGE_SIZE = 50


class BatchForm(forms.Form):
    """Parses only; the rules (names, quota, pool, wallet, billing profile) are the service's."""

    plan = forms.ModelChoiceField(queryset=None, empty_label="Choose a plan")
    image = forms.ModelChoiceField(queryset=None, empty_label="Choose an image")
    hypervisor = forms.ModelChoiceField(queryset=None, label="Region", empty_label=None)
    name_pattern = forms.CharField(
        max_length=63, initial="lab-{n}", help_text="{n} becomes 1, 2, 3...: lab-{n} gives lab-1, lab-2, ..."
    )
    count = forms.IntegerField(min_value=1, max_value=MAX_BATCH_SIZE, initial=30, label="How many VMs")
    first_number = forms.IntegerField(min_value=0, max_value=1_000_000, initial=1, label="First number")
    ssh_public_key = forms.CharField(
        required=False,
        label="SSH public key (optional)",
        help_text="Installed for root on every VM of the batch.",
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, label_suffix="", **kwargs)
        self.fields["plan"].queryset = selectors.plan_list_offered()
        self.fields["image"].queryset = selectors.image_list_offered()
        self.fields["hypervisor"].queryset = selectors.hypervisor_list_offered()


@with_project(Role.MEMBER)
def batch_new(request, project):
    form = BatchForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            batch = services.vm_batch_create(user=request.user, project=project, request=request, **form.cleaned_data)
        except ServiceError as exc:
            for field, errors in (exc.fields or {}).items():
                form.add_error(field if field in form.fields else None, errors)
            if not exc.fields:
                form.add_error(None, exc.message)
        else:
            messages.success(request, f"Batch {batch} accepted: {batch.count} VMs.")
            return redirect("compute:batch_list", slug=project.slug)
    return render(request, "compute/batch_new.html", {"project": project, "form": form})


@with_project()
def batch_list(request, project):
    batches = selectors.vm_batch_with_progress(VMBatch.objects.filter(project=project))
    page = Paginator(batches, PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [(batch, selectors.vm_batch_progress(batch)) for batch in page]
    context = {
        "project": project,
        "page": page,
        "rows": rows,
        "busy": any(p["pending"] or p["building"] for _, p in rows),
        "can_request": role_at_least(project.role, Role.MEMBER),
    }
    template = "compute/_batch_table.html" if request.htmx else "compute/batch_list.html"
    return render(request, template, context)
