"""Console pages: the VM's console in the portal, the same for operators from admin, and
the page a console URL from the API opens. Each page fetches a fresh one-time token (a
POST to the token view) every time it connects; see compute/services/console.py.
"""

from urllib.parse import urlsplit

from csp.constants import NONCE, UNSAFE_INLINE
from csp.decorators import csp_update
from django.conf import settings
from django.contrib.admin.views.decorators import staff_member_required
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from accounts.views.common import with_project
from controlplane.api import error_body
from controlplane.errors import ServiceError

from . import selectors, services
from .choices import ConsoleProtocol, GuestType
from .models import VirtualMachine


def page_origin(request) -> str:
    """scheme://host[:port] of this site as the browser sees it: the Origin the console
    page's WebSocket will carry."""
    return request.build_absolute_uri("/").rstrip("/")


def proxy_url_for(origin: str) -> str:
    """``CONSOLE_PROXY_URL``; a bare path ("/console/ws/") is on the page's own host."""
    url = settings.CONSOLE_PROXY_URL
    if url.startswith("/"):
        return origin.replace("https://", "wss://", 1).replace("http://", "ws://", 1) + url
    return url


def console_policy(protocol: str) -> dict:
    """The console page's additions to the site's Content-Security-Policy (settings
    CONTENT_SECURITY_POLICY), for this page only: connect-src gets the proxy's WebSocket
    origin when CONSOLE_PROXY_URL is absolute (a bare path is this site: 'self'); the
    serial console's xterm.js writes <style> elements, which carry this response's nonce
    (static/console/console.js), and colours some cells with style attributes, which
    cannot carry one (style-src-attr). Scripts stay 'self' only."""
    policy = {}
    proxy = urlsplit(settings.CONSOLE_PROXY_URL)
    if proxy.scheme and proxy.netloc:
        policy["connect-src"] = [f"{proxy.scheme}://{proxy.netloc}"]
    if protocol == ConsoleProtocol.SERIAL:
        policy["style-src"] = [NONCE]
        policy["style-src-attr"] = [UNSAFE_INLINE]
    return policy


def default_protocol(vm: VirtualMachine) -> str:
    return ConsoleProtocol.SERIAL if vm.plan.guest_type == GuestType.CONTAINER else ConsoleProtocol.VNC


def _protocol(request, vm) -> str:
    value = request.GET.get("protocol") or request.POST.get("protocol") or default_protocol(vm)
    return value if value in ConsoleProtocol.values else default_protocol(vm)


def _page(request, vm, *, token_url: str, back_url: str, project=None):
    protocol = _protocol(request, vm)
    context = {
        "vm": vm,
        "project": project,
        "protocol": protocol,
        "protocols": ConsoleProtocol.choices,
        "token_url": token_url,
        "back_url": back_url,
        "proxy_url": settings.CONSOLE_PROXY_URL,
    }
    return _render(request, context)


def _render(request, context):
    return csp_update(console_policy(context["protocol"]))(render)(request, "compute/console.html", context)


def _issue(request, vm) -> JsonResponse:
    try:
        session, token = services.console_session_open(
            vm=vm, user=request.user, request=request, origin=page_origin(request), protocol=_protocol(request, vm)
        )
    except ServiceError as exc:
        return JsonResponse(error_body(exc.code, exc.message, exc.fields), status=exc.status)
    return JsonResponse(
        {"token": token, "protocol": session.protocol, "proxy_url": settings.CONSOLE_PROXY_URL, "vm": vm.name}
    )


@with_project()
def vm_console(request, project, pk):
    vm = selectors.vm_get_for_project(project=project, pk=pk)
    return _page(
        request,
        vm,
        project=project,
        token_url=reverse("compute:vm_console_token", args=[project.slug, vm.pk]),
        back_url=reverse("compute:vm_detail", args=[project.slug, vm.pk]),
    )


@require_POST
@with_project()
def vm_console_token(request, project, pk):
    return _issue(request, selectors.vm_get_for_project(project=project, pk=pk))


@staff_member_required
def operator_console(request, pk):
    vm = get_object_or_404(VirtualMachine.objects.select_related("plan", "project"), pk=pk)
    return _page(
        request,
        vm,
        token_url=reverse("compute:operator_console_token", args=[vm.pk]),
        back_url=reverse("admin:compute_virtualmachine_change", args=[vm.pk]),
    )


@require_POST
@staff_member_required
def operator_console_token(request, pk):
    return _issue(request, get_object_or_404(VirtualMachine.objects.select_related("plan", "project"), pk=pk))


def console_link(request):
    """The page a console URL from the API opens: the one-time token is in the URL's
    fragment (never sent to a server but the console proxy), so no login is needed here."""
    protocol = request.GET.get("protocol", ConsoleProtocol.VNC)
    context = {
        "vm": None,
        "protocol": protocol if protocol in ConsoleProtocol.values else ConsoleProtocol.VNC,
        "token_url": "",
        "back_url": "/",
        "proxy_url": settings.CONSOLE_PROXY_URL,
    }
    return _render(request, context)
