"""The first-run page: on an installation with no operator yet, the console sends every visitor here
to set up the root ISP and its owner, then signs the owner in. As soon as any operator exists the
page is gone (404), so it can never be used to add a second root or an owner to someone's ISP."""

from __future__ import annotations

from django.contrib.auth import authenticate
from django.contrib.auth.models import User
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters

from sonjog.console.forms.operators import OwnerForm, SetupForm
from sonjog.console.views.auth import _signed_in
from sonjog.console.views.operators import field_groups
from sonjog.operators.exceptions import OperatorError
from sonjog.operators.models import Operator
from sonjog.operators.services import root_isp_setup


@sensitive_post_parameters("owner_password")
@csrf_protect
@never_cache
def setup_view(request: HttpRequest) -> HttpResponse:
    if Operator.objects.exists():
        raise Http404("this installation is set up")
    data = request.POST if request.method == "POST" else None
    settings_form = SetupForm(data)
    owner_form = OwnerForm(data)
    if data is not None and settings_form.is_valid() & owner_form.is_valid():
        owner_data = owner_form.cleaned_data
        try:
            root_isp_setup(
                code=settings_form.cleaned_data["code"],
                owner_username=owner_data["owner_username"],
                owner_password=owner_data["owner_password"],
                owner_email=owner_data.get("owner_email") or "",
                first_run=True,
                **settings_form.settings(),
            )
        except OperatorError as error:
            settings_form.add_error(None, str(error))
        else:
            user = authenticate(request, username=owner_data["owner_username"], password=owner_data["owner_password"])
            assert isinstance(user, User)
            return _signed_in(request, user)
    context = {
        "settings_form": settings_form,
        "owner_form": owner_form,
        "forms": [settings_form, owner_form],
        "groups": field_groups(settings_form),
    }
    status = 400 if settings_form.errors or owner_form.errors else 200
    return render(request, "console/setup.html", context, status=status)
