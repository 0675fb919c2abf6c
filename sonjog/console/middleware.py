"""The second sign-in step, enforced for every signed-in session whichever page signed it in (the
console's login, the Django admin's, a future portal's): until the session has given its TOTP code,
or enrolled when its role requires one, it reaches only the code and enrolment pages and sign-out."""

from __future__ import annotations

from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.deprecation import MiddlewareMixin

from sonjog.console import twofactor
from sonjog.console.twofactor import SecondFactor


class SecondFactorMiddleware(MiddlewareMixin):
    def process_request(self, request: HttpRequest) -> HttpResponse | None:
        user = request.user
        if not user.is_authenticated or twofactor.is_verified(user):
            return None
        state = twofactor.session_state(request, user)
        if state is SecondFactor.NONE:
            return None
        verify_url = reverse("console:two_factor_verify")
        enrol_url = reverse("console:two_factor")
        open_paths = {verify_url, reverse("console:logout"), reverse("set_language")}
        if state is SecondFactor.ENROL:
            open_paths.add(enrol_url)
        if request.path in open_paths:
            return None
        target = verify_url if state is SecondFactor.VERIFY else enrol_url
        return HttpResponseRedirect(f"{target}?{urlencode({'next': request.get_full_path()})}")
