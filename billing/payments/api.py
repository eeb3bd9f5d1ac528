"""/api/v1/projects/<slug>/payments/...: pay into the wallet from the API.

``POST razorpay/orders/`` creates an order and answers Checkout's options;
after Checkout, ``POST razorpay/verify/`` with its three values credits the
wallet once the server verified signature and capture. ``POST transfers/``
reports a bank/UPI transfer. ``GET`` lists the project's payments. Paying
needs the member role; reading, any role."""

from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.choices import Role
from controlplane.api import JSONTypesMixin, ProjectScopedMixin

from ..models import Payment
from . import selectors
from .razorpay import razorpay_callback, razorpay_order_create
from .transfers import transfer_report
from .views import checkout_options


class PaymentSerializer(serializers.ModelSerializer):
    receipt = serializers.CharField(source="receipt.number", default=None, read_only=True)

    class Meta:
        model = Payment
        fields = [
            "id",
            "reference",
            "method",
            "status",
            "amount",
            "currency",
            "gateway_order_id",
            "gateway_payment_id",
            "utr",
            "created_at",
            "credited_at",
            "receipt",
            "note",
        ]


class AmountSerializer(serializers.Serializer):
    amount = serializers.CharField(help_text="Rupees, e.g. 500 or 499.50.")


class OrderSerializer(serializers.Serializer):
    payment = PaymentSerializer()
    checkout = serializers.DictField(help_text="Options for Razorpay Checkout (key, amount in paise, order_id...).")


class VerifySerializer(JSONTypesMixin, serializers.Serializer):
    """Checkout's three values, in Razorpay's formats (the schema says them, so
    anything else is a 400 before the gateway is asked)."""

    razorpay_order_id = serializers.RegexField(r"^order_[A-Za-z0-9]{1,34}$", max_length=40)
    razorpay_payment_id = serializers.RegexField(r"^pay_[A-Za-z0-9]{1,36}$", max_length=40)
    razorpay_signature = serializers.RegexField(
        r"^[0-9a-f]{64}$", help_text="Hex HMAC-SHA256 of order_id|payment_id, as Checkout gives it."
    )


class VerifyResultSerializer(serializers.Serializer):
    credited = serializers.BooleanField()
    message = serializers.CharField()
    payment = PaymentSerializer()


class TransferSerializer(AmountSerializer):
    utr = serializers.CharField(max_length=60, help_text="The bank's UTR / UPI reference.")


class PaymentApi(ProjectScopedMixin):
    staff_override = True

    def project_role_needed(self) -> str:
        return Role.MEMBER if self.request.method == "POST" else Role.VIEWER


class ProjectPaymentListApi(PaymentApi, generics.ListAPIView):
    serializer_class = PaymentSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Payment.objects.none()
        return selectors.payment_list(project=self.project)


class ProjectRazorpayOrderApi(PaymentApi, APIView):
    @extend_schema(request=AmountSerializer, responses={201: OrderSerializer})
    def post(self, request, slug):
        body = AmountSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        payment = razorpay_order_create(project=self.project, amount=body.validated_data["amount"], actor=request.user)
        data = {"payment": PaymentSerializer(payment).data, "checkout": checkout_options(payment, request.user)}
        return Response(data, status=status.HTTP_201_CREATED)


class ProjectRazorpayVerifyApi(PaymentApi, APIView):
    @extend_schema(request=VerifySerializer, responses={200: VerifyResultSerializer, 202: VerifyResultSerializer})
    def post(self, request, slug):
        body = VerifySerializer(data=request.data)
        body.is_valid(raise_exception=True)
        result = razorpay_callback(
            project=self.project,
            order_id=body.validated_data["razorpay_order_id"],
            payment_id=body.validated_data["razorpay_payment_id"],
            signature=body.validated_data["razorpay_signature"],
            actor=request.user,
            request=request,
        )
        data = {
            "credited": result.credited,
            "message": result.message,
            "payment": PaymentSerializer(result.payment).data,
        }
        return Response(data, status=status.HTTP_200_OK if result.credited else status.HTTP_202_ACCEPTED)


class ProjectTransferApi(PaymentApi, APIView):
    @extend_schema(request=TransferSerializer, responses={201: PaymentSerializer})
    def post(self, request, slug):
        body = TransferSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        payment = transfer_report(
            project=self.project,
            amount=body.validated_data["amount"],
            utr=body.validated_data["utr"],
            actor=request.user,
            request=request,
        )
        return Response(PaymentSerializer(payment).data, status=status.HTTP_201_CREATED)
