"""Who is acting, for which part of the operator tree, with which permissions.

Every console view is wrapped in `console_view`: it signs out sessions opened before a "log out
everywhere", switches to the login's language and its operator's time zone, checks the Django
permission the view needs (403), and attaches a `Scope`. Rows a user names by id are fetched through
`Scope.get_or_404`, so another subtree's row is indistinguishable from a missing one.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth import logout
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db.models import Model, Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase, HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone, translation

from sonjog.console.models import ConsoleProfile
from sonjog.core.audit import acting_for
from sonjog.core.scoping import subtree_q
from sonjog.operators.models import Operator, all_modules

M = TypeVar("M", bound=Model)

SESSION_EPOCH_KEY = "console_epoch"
# "Act as reseller": which reseller, until when, in the session of the parent's staff member.
ACTING_KEY = "console_acting"
ACTING_MINUTES = 30
ACT_FOR_RESELLERS = "operators.act_for_resellers"
ACT_AS_RESELLER = "operators.act_as_reseller"
# What a read-only "act as" may still post: ending it, signing out, the language.
ACTING_POSTS_ALLOWED = frozenset({"act_stop", "logout", "logout_everywhere", "language"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class Acting:
    """A parent's staff member seeing (and, with the permission, working in) a reseller's console."""

    operator: Operator
    until: dt.datetime
    may_write: bool
    own_operator: Operator | None


@dataclass
class Scope:
    """The part of the operator tree a login may see. `operator` None: a superuser with no staff
    record, who sees every operator."""

    user: User
    operator: Operator | None
    sees_subtree: bool = True
    _operators: list[Operator] | None = field(default=None, repr=False)
    acting: Acting | None = None

    def q(self, field_name: str = "operator") -> Q:
        if self.operator is None:
            return Q()
        if self.sees_subtree:
            return subtree_q(self.operator, field_name)
        return Q(**{f"{field_name}_id": self.operator.pk})

    def filter(self, queryset: QuerySet[M], field_name: str = "operator") -> QuerySet[M]:
        return queryset.filter(self.q(field_name))

    def get_or_404(self, queryset: QuerySet[M], field_name: str = "operator", **lookup: Any) -> M:
        """The row matching `lookup` inside this scope, or 404 whether it is missing or out of scope."""
        try:
            return self.filter(queryset, field_name).get(**lookup)
        except (queryset.model.DoesNotExist, ValueError, TypeError):  # type: ignore[attr-defined]
            raise Http404 from None

    @property
    def operators(self) -> list[Operator]:
        """Every operator in scope, root first (a handful of rows, read once per request)."""
        if self._operators is None:
            if self.operator is None:
                self._operators = list(Operator.objects.order_by("path"))
            elif self.sees_subtree:
                self._operators = list(Operator.objects.filter(path__startswith=self.operator.path).order_by("path"))
            else:
                self._operators = [self.operator]
        return self._operators

    @property
    def operator_ids(self) -> list[int]:
        return [each.pk for each in self.operators]

    @property
    def home(self) -> Operator:
        """The operator the login acts for; for an unattached superuser, the first root."""
        if self.operator is not None:
            return self.operator
        if not self.operators:
            raise Http404("no operator exists yet")
        return self.operators[0]

    @property
    def time_zone(self) -> str:
        return self.operator.time_zone if self.operator is not None else settings.TIME_ZONE

    @property
    def spans_many(self) -> bool:
        return len(self.operators) > 1

    @property
    def modules(self) -> frozenset[str]:
        """The console sections the login's operator was given (module access; every section for a
        superuser). Its permissions are already cut to them (sonjog.operators.backends); the menu
        reads this only for headings that no single permission decides."""
        if self.operator is None:
            return frozenset(all_modules())
        return frozenset(self.operator.modules)


def scope_for(user: User) -> Scope | None:
    staff = getattr(user, "staff", None)
    if staff is not None:
        if not staff.operator.is_active:
            return None  # a deactivated operator's staff do not sign in
        # Seeing the resellers' data takes both the login's own switch and its role's permission.
        sees_subtree = staff.sees_subtree and user.has_perm("operators.act_for_resellers")
        return Scope(user=user, operator=staff.operator, sees_subtree=sees_subtree)
    if user.is_superuser:
        return Scope(user=user, operator=None)
    return None


def may_act_as(scope: Scope, target: Operator) -> bool:
    """Whether the login's own scope may act as `target`: one of its resellers (below its operator,
    in its subtree), active, and the login's role acts for resellers."""
    if not target.is_active or not scope.user.has_perm(ACT_FOR_RESELLERS):
        return False
    if scope.operator is None:
        return scope.user.is_superuser
    return scope.sees_subtree and target.pk != scope.operator.pk and target.path.startswith(scope.operator.path)


def acting_start(request: HttpRequest, scope: Scope, target: Operator) -> Acting:
    """Begin acting as `target` for ACTING_MINUTES (the caller has checked `may_act_as`)."""
    until = timezone.now() + dt.timedelta(minutes=ACTING_MINUTES)
    request.session[ACTING_KEY] = {"operator": target.pk, "until": until.isoformat()}
    return Acting(target, until, scope.user.has_perm(ACT_AS_RESELLER), scope.operator)


def acting_stop(request: HttpRequest) -> None:
    request.session.pop(ACTING_KEY, None)


def _acting_scope(request: HttpRequest, scope: Scope) -> Scope:
    """The reseller's scope while the session acts as it and still may; the login's own otherwise."""
    raw = request.session.get(ACTING_KEY)
    if not isinstance(raw, dict):
        return scope
    try:
        until = dt.datetime.fromisoformat(str(raw["until"]))
        target = Operator.objects.filter(pk=int(raw["operator"])).first()
    except (KeyError, TypeError, ValueError):
        target = None
    if target is None or until <= timezone.now() or not may_act_as(scope, target):
        acting_stop(request)
        return scope
    acting = Acting(target, until, scope.user.has_perm(ACT_AS_RESELLER), scope.operator)
    return Scope(user=scope.user, operator=target, sees_subtree=True, acting=acting)


def login_redirect(request: HttpRequest) -> HttpResponse:
    if not Operator.objects.exists():
        # A new installation: nothing to sign in to yet, so the first-run page sets up the root ISP.
        return HttpResponseRedirect(reverse("console:setup"))
    return HttpResponseRedirect(f"{reverse('console:login')}?{urlencode({'next': request.get_full_path()})}")


def _load_user(request: HttpRequest) -> tuple[User, ConsoleProfile | None]:
    """The user with its staff record, operator and console profile in one query."""
    user = (
        User.objects.select_related("staff__operator", "console_profile")
        .filter(pk=int(request.user.pk or 0), is_active=True)
        .first()
    )
    if user is None:
        raise PermissionDenied
    return user, getattr(user, "console_profile", None)


def enter_console(request: HttpRequest) -> HttpResponse | Scope:
    """Shared by sync views and the async stream: sign-in, epoch, language, time zone and scope."""
    if not request.user.is_authenticated:
        return login_redirect(request)
    user, profile = _load_user(request)
    if profile is not None and request.session.get(SESSION_EPOCH_KEY) != profile.session_epoch:
        logout(request)
        return login_redirect(request)
    scope = scope_for(user)
    if scope is None:
        raise PermissionDenied("this login belongs to no operator")
    scope = _acting_scope(request, scope)
    if scope.operator is None and not scope.operators:
        # An installation's superuser on an empty database: the first-run page sets up the root ISP.
        return HttpResponseRedirect(reverse("console:setup"))
    # Permission checks go through the user we just loaded; keep request.user the same object so
    # Django's per-object permission cache is filled once per request.
    request.user = user
    language = profile.language if profile is not None else translation.get_language()
    translation.activate(language)
    request.LANGUAGE_CODE = translation.get_language()
    timezone.activate(ZoneInfo(scope.time_zone))
    return scope


ViewFunction = TypeVar("ViewFunction", bound=Callable[..., HttpResponseBase])


def console_view(permission: str | None = None) -> Callable[[ViewFunction], ViewFunction]:
    def decorate(view: ViewFunction) -> ViewFunction:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            entered = enter_console(request)
            if isinstance(entered, HttpResponse):
                return entered
            if permission is not None and not request.user.has_perm(permission):
                raise PermissionDenied
            request.scope = entered  # type: ignore[attr-defined]
            acting = entered.acting
            if acting is None:
                return view(request, *args, **kwargs)
            if (
                not acting.may_write
                and request.method not in SAFE_METHODS
                and getattr(request.resolver_match, "url_name", None) not in ACTING_POSTS_ALLOWED
            ):
                raise PermissionDenied("viewing as a reseller is read-only for this login")
            with acting_for(acting.operator.code):
                return view(request, *args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def scope_of(request: HttpRequest) -> Scope:
    scope: Scope = request.scope  # type: ignore[attr-defined]
    return scope
