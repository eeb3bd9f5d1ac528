"""Razorpay's webhook endpoint: no session, no CSRF token (Razorpay signs
the raw body instead; ``razorpay.razorpay_webhook`` checks it)."""

from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from . import razorpay


@csrf_exempt
@require_POST
def razorpay_webhook(request):
    result = razorpay.razorpay_webhook(body=request.body, signature=request.headers.get("X-Razorpay-Signature", ""))
    return JsonResponse({"status": result.message}, status=result.status)
