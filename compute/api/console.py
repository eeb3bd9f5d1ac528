"""POST /api/v1/virtual-machines/{id}/console/: a one-time console URL (docs/CONSOLE.md)."""

from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from compute import selectors, services
from compute.choices import ConsoleProtocol
from compute.console_views import default_protocol, page_origin, proxy_url_for
from compute.models import VirtualMachine


class ConsoleRequestSerializer(serializers.Serializer):
    protocol = serializers.ChoiceField(
        choices=ConsoleProtocol.choices,
        required=False,
        help_text="vnc (the screen) or serial (a text console); default: the guest type's usual one.",
    )


class ConsoleSerializer(serializers.Serializer):
    url = serializers.URLField(help_text="Open in a browser within expires_at; it works once.")
    websocket_url = serializers.CharField(help_text="For your own client: the proxy's WebSocket with the token.")
    protocol = serializers.ChoiceField(choices=ConsoleProtocol.choices)
    expires_at = serializers.DateTimeField()


class VirtualMachineConsoleApi(GenericAPIView):
    """Issue a one-time console link for a VM (members; viewers only when the operator allows)."""

    serializer_class = ConsoleRequestSerializer
    queryset = VirtualMachine.objects.none()

    def get_queryset(self):
        user = self.request.user
        if user.is_staff:
            return VirtualMachine.objects.select_related("project", "plan", "hypervisor").all()
        return selectors.vm_list_for_user(user=user)

    @extend_schema(request=ConsoleRequestSerializer, responses={201: ConsoleSerializer})
    def post(self, request, pk):
        vm = self.get_object()
        body = self.get_serializer(data=request.data)
        body.is_valid(raise_exception=True)
        protocol = body.validated_data.get("protocol") or default_protocol(vm)
        session, token = services.console_session_open(
            vm=vm, user=request.user, request=request, origin=page_origin(request), protocol=protocol
        )
        page = request.build_absolute_uri(reverse("compute:console_link"))
        proxy = proxy_url_for(page_origin(request))
        data = {
            "url": f"{page}?protocol={protocol}#token={token}",
            "websocket_url": f"{proxy}?token={token}",
            "protocol": protocol,
            "expires_at": session.expires_at,
        }
        return Response(ConsoleSerializer(data).data, status=status.HTTP_201_CREATED)
