from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect
from django.urls import reverse

from controlplane.errors import Forbidden, NotFound, ServiceError

from ..choices import Role
from ..security import safe_next
from ..selectors import project_for_user


def portal_errors(view_func):
    """Turn service errors into what a person sees: 404 page, 403 page, or a
    message on the page they came from (invalid input, conflicts)."""

    @wraps(view_func)
    def wrapper(request, *args, **kwargs):
        try:
            return view_func(request, *args, **kwargs)
        except NotFound as exc:
            raise Http404(exc.message) from None
        except Forbidden as exc:
            if exc.code == "two_factor_required":
                messages.warning(request, exc.message)
                return redirect("accounts:two_factor")
            raise PermissionDenied(exc.message) from None
        except ServiceError as exc:
            messages.error(request, exc.message)
            default = reverse("accounts:project_detail", args=[kwargs["slug"]]) if "slug" in kwargs else request.path
            return redirect(safe_next(request, request.META.get("HTTP_REFERER"), default=default))

    return wrapper


def with_project(role: str = Role.VIEWER, *, staff_override: bool = False):
    """Portal pages under a project's ``slug``: log-in required, the slug resolved
    by ``accounts.selectors.project_for_user`` for a user holding ``role`` (its
    404 / 403 / 2FA answers through ``portal_errors``, which also covers the
    view), and the view called as ``view(request, project, **kwargs)`` with
    ``project.role`` set to the user's role."""

    def decorator(view):
        @login_required
        @wraps(view)
        @portal_errors
        def wrapper(request, slug, **kwargs):
            project = project_for_user(user=request.user, slug=slug, role=role, staff_override=staff_override)
            return view(request, project, **kwargs)

        return wrapper

    return decorator


def form_errors(request, form) -> None:
    for field, errors in form.errors.items():
        field_obj = form.fields.get(field)
        label = (field_obj.label or field.replace("_", " ").capitalize()) if field_obj else ""
        for error in errors:
            messages.error(request, f"{label}: {error}" if label else error)
