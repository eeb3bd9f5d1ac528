"""/api/v1/ for notifications (the caller's own) and webhook endpoints (project
owners/admins; global ones for operators) with their delivery log."""

import django_filters
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from controlplane.api import IdFilter

from .. import selectors, services
from ..models import Notification, WebhookDelivery, WebhookEndpoint
from .serializers import (
    MarkedSerializer,
    MarkReadSerializer,
    NotificationSerializer,
    PreferenceSerializer,
    PreferencesUpdateSerializer,
    SecretSerializer,
    WebhookDeliverySerializer,
    WebhookEndpointCreatedSerializer,
    WebhookEndpointSerializer,
)


class NotificationViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = NotificationSerializer
    filterset_fields = {"event_type": ["exact"], "read_at": ["isnull"]}

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Notification.objects.none()
        return selectors.notification_list_for_user(user=self.request.user)

    @extend_schema(request=MarkReadSerializer, responses={200: MarkedSerializer})
    @action(detail=False, methods=["post"], url_path="mark-read")
    def mark_read(self, request):
        body = MarkReadSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        marked = services.notification_mark_read(user=request.user, ids=body.validated_data.get("ids"))
        return Response({"marked": marked})


class NotificationPreferencesApi(APIView):
    """Email on/off per event type (every notification also shows in the portal)."""

    @extend_schema(responses={200: PreferenceSerializer(many=True)})
    def get(self, request):
        return Response(PreferenceSerializer(selectors.preferences_for_user(user=request.user), many=True).data)

    @extend_schema(request=PreferencesUpdateSerializer, responses={200: PreferenceSerializer(many=True)})
    def patch(self, request):
        body = PreferencesUpdateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        services.preferences_set(user=request.user, email=body.validated_data["email"])
        return self.get(request)


class WebhookEndpointViewSet(viewsets.ModelViewSet):
    serializer_class = WebhookEndpointSerializer
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    filterset_fields = ["enabled"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return WebhookEndpoint.objects.none()
        return selectors.webhook_endpoint_list_for_user(user=self.request.user)

    @extend_schema(request=WebhookEndpointSerializer, responses={201: WebhookEndpointCreatedSerializer})
    def create(self, request):
        body = self.get_serializer(data=request.data)
        body.is_valid(raise_exception=True)
        endpoint, secret = services.webhook_endpoint_create(actor=request.user, request=request, **body.validated_data)
        data = WebhookEndpointCreatedSerializer(endpoint, context=self.get_serializer_context()).data
        data["secret"] = secret
        return Response(data, status=status.HTTP_201_CREATED)

    def perform_update(self, serializer):
        data = dict(serializer.validated_data)
        data.pop("project", None)  # an endpoint does not move between projects
        serializer.instance = services.webhook_endpoint_update(
            endpoint=serializer.instance, actor=self.request.user, request=self.request, **data
        )

    def perform_destroy(self, instance):
        services.webhook_endpoint_delete(endpoint=instance, actor=self.request.user, request=self.request)

    @extend_schema(request=None, responses={200: SecretSerializer})
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request, pk=None):
        secret = services.webhook_secret_rotate(endpoint=self.get_object(), actor=request.user, request=request)
        return Response({"secret": secret})


class WebhookDeliveryFilter(django_filters.FilterSet):
    endpoint = IdFilter(field_name="endpoint_id", help_text="Only this endpoint's deliveries (an unknown id: none).")

    class Meta:
        model = WebhookDelivery
        fields = ["endpoint", "state", "event_type"]


class WebhookDeliveryViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The delivery log: each delivery with its attempts and response codes."""

    serializer_class = WebhookDeliverySerializer
    filterset_class = WebhookDeliveryFilter

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return WebhookDelivery.objects.none()
        return selectors.webhook_delivery_list_for_user(user=self.request.user).prefetch_related("attempt_log")

    @extend_schema(request=None, responses={202: WebhookDeliverySerializer})
    @action(detail=True, methods=["post"])
    def redeliver(self, request, pk=None):
        delivery = services.webhook_delivery_redeliver(delivery=self.get_object(), actor=request.user)
        return Response(self.get_serializer(delivery).data, status=status.HTTP_202_ACCEPTED)
