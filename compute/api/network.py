"""/api/v1/virtual-machines/<id>/ptr/: a user sets the reverse DNS name of one of their VM's
addresses (compute/services/rdns.py); /extra-ips/: additional IPs, the plan's priced add-on
(compute/services/ipam.py). Mixed into VirtualMachineViewSet."""

from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.response import Response

from compute.services import ipam, rdns


@extend_schema_field({"type": "string", "anyOf": [{"format": "ipv4"}, {"format": "ipv6"}]})
class _AddressField(serializers.IPAddressField):
    pass


class PTRSetSerializer(serializers.Serializer):
    address = _AddressField(help_text="One of the VM's assigned addresses.")
    ptr = serializers.CharField(
        max_length=255,
        allow_blank=True,
        help_text="Host name; by default it must resolve (A/AAAA) to the address. Empty: the operator's default.",
    )


class PTRSerializer(serializers.Serializer):
    address = serializers.CharField()
    ptr = serializers.CharField(help_text="Empty: no PTR record.")
    ptr_pending = serializers.BooleanField(help_text="Not in the DNS server yet (written within seconds).")


class ExtraIPAddSerializer(serializers.Serializer):
    family = serializers.ChoiceField(choices=[4, 6], default=4)


class ExtraIPSerializer(serializers.Serializer):
    address = serializers.CharField()
    family = serializers.IntegerField()


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

    @extend_schema(
        request=ExtraIPAddSerializer,
        responses={201: ExtraIPSerializer},
        description="Add an additional IP (the plan's add-on, billed per hour held at price_hourly_extra_ip). "
        "409 when the plan offers none, at the plan's limit, or no address is free. Configure it in the guest.",
    )
    @action(detail=True, methods=["post"], url_path="extra-ips")
    def extra_ips(self, request, pk=None):
        vm = self.get_object()
        body = ExtraIPAddSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        allocation = ipam.vm_extra_ip_add(
            vm=vm, family=int(body.validated_data["family"]), user=request.user, request=request
        )
        return Response({"address": allocation.address, "family": allocation.family}, status=201)

    @extend_schema(
        request=None,
        responses={204: None},
        description="Give an additional IP back; billing stops now. 404 if it is not one of this VM's additional IPs.",
    )
    @action(detail=True, methods=["delete"], url_path=r"extra-ips/(?P<address>[0-9a-fA-F:.]+)")
    def extra_ip_remove(self, request, pk=None, address=None):
        ipam.vm_extra_ip_remove(vm=self.get_object(), address=address, user=request.user, request=request)
        return Response(status=204)
