from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from . import selectors


@login_required
def dashboard(request):
    vms = selectors.vm_list_for_user(user=request.user)
    return render(request, "compute/dashboard.html", {"vms": vms})
