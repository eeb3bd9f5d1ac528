"""/api/v1/virtual-machines/<id>/ptr/: a user sets the reverse DNS name of one of their VM's
addresses (compute/services/rdns.py). Mixed into VirtualMachineViewSet."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.response import Response

from compute.services import rdns


class PTRSetSerializer(serializers.Serializer):
    address = serializers.CharField(max_length=39, help_text="One of the VM's assigned addresses.")
    ptr = serializers.CharField(
        max_length=255,
        allow_blank=True,
        help_text="Host name; by default it must resolve (A/AAAA) to the address. Empty: the operator's default.",
    )


class PTRSerializer(serializers.Serializer):
    address = serializers.CharField()
    ptr = serializers.CharField(help_text="Empty: no PTR record.")
    ptr_pending = serializers.BooleanField(help_text="Not in the DNS server yet (written within seconds).")


class VMNetworkMixin:
    """Needs ``get_object`` (the caller's VM, 404 otherwise)."""

    @extend_schema(
        request=PTRSetSerializer,
        responses={200: PTRSerializer},
        description="Set the PTR record of one of the VM's addresses. 400 for a name that is not a host name "
        "or does not resolve to the address; 404 where the operator offers no reverse DNS.",
    )
    @action(detail=True, methods=["post"])
    def ptr(self, request, pk=None):
        vm = self.get_object()
        body = PTRSetSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        address = body.validated_data["address"]
        record = rdns.rdns_ptr_set(
            vm=vm, address=address, ptr=body.validated_data["ptr"], user=request.user, request=request
        )
        ptr, pending = (record.ptr, record.pending) if record else ("", False)
        return Response({"address": address, "ptr": ptr, "ptr_pending": pending})
