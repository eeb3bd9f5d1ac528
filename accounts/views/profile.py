"""Portal: Account → Profile (name and the time zone pages show times in)."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.utils import timezone

from .. import services
from ..forms import ProfileForm


@login_required
def profile(request):
    user = request.user
    form = ProfileForm(request.POST or None, initial={"full_name": user.full_name, "time_zone": user.time_zone})
    if request.method == "POST":
        if not form.is_valid():
            return render(request, "accounts/profile.html", {"form": form}, status=400)
        services.user_profile_update(
            user=user,
            full_name=form.cleaned_data["full_name"],
            time_zone=form.cleaned_data["time_zone"],
            request=request,
        )
        messages.success(request, "Profile saved.")
        return redirect("accounts:profile")
    return render(request, "accounts/profile.html", {"form": form, "now": timezone.now()})
