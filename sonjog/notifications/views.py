"""Delivery-report webhooks: /hooks/notifications/<provider>/<account_id>/?token=...

Providers cannot log in, so each account has its own shared token, given in the callback URL's query
string or an X-Sonjog-Token header. Bad input answers 400 with JSON naming the field. A wrong token
answers exactly as an account that does not exist (404), so the hook never tells anyone without the
token which account ids exist.
"""

from __future__ import annotations

import hmac

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from sonjog.notifications import services
from sonjog.notifications.models import ProviderAccount, ProviderKind
from sonjog.notifications.providers import PROVIDERS, ReportError, provider_for


def _error(status: int, field: str, message: str) -> JsonResponse:
    return JsonResponse({"error": message, "field": field}, status=status)


def _token_matches(given: str, account: ProviderAccount) -> bool:
    return hmac.compare_digest(given.encode(), account.webhook_token.encode())


@csrf_exempt
@require_http_methods(["GET", "POST"])
def delivery_report(request: HttpRequest, provider: str, account_id: int) -> HttpResponse:
    if provider not in PROVIDERS:
        return _error(404, "provider", f"unknown provider '{provider}'")
    account = ProviderAccount.objects.filter(pk=account_id, kind=provider).first()
    unknown = _error(404, "account_id", f"no {provider} account {account_id} with that token")
    if provider == ProviderKind.WHATSAPP_CLOUD and request.GET.get("hub.mode") == "subscribe":
        # Meta's one-time check of the callback URL: echo the challenge if the verify token is ours.
        if account is None or not _token_matches(request.GET.get("hub.verify_token", ""), account):
            return unknown
        return HttpResponse(request.GET.get("hub.challenge", ""), content_type="text/plain")
    token = request.GET.get("token") or request.headers.get("X-Sonjog-Token", "")
    if not token:
        return _error(400, "token", "the token is missing (query parameter 'token' or header X-Sonjog-Token)")
    if account is None or not _token_matches(token, account):
        return unknown
    try:
        updates = provider_for(account).parse_delivery_report(request)
    except ReportError as error:
        return _error(400, error.field, str(error))
    counts = services.delivery_reports_apply(account=account, updates=updates)
    return JsonResponse({"ok": True, **counts})
