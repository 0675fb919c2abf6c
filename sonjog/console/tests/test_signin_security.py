"""Sign-in security: one django-axes throttle for the console and the admin (lock, retry time, cool-off,
trusted proxy header), the optional TOTP second factor, idle and user-agent-bound sessions, and the
security headers (CSP without inline script or style, no-store, Referrer-Policy, nosniff, HSTS)."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import time_machine
from axes.models import AccessAttempt
from django.conf import settings as django_settings
from django.test import Client, RequestFactory, override_settings
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from sonjog.billing.models import Invoice
from sonjog.console.tests.conftest import PASSWORD
from sonjog.core.client import client_address

pytestmark = pytest.mark.django_db

LOGIN = "console:login"
WRONG = "Wrong username or password"
LOCKED = "Too many failed sign-ins for this username"


def sign_in(client, username, password, address="10.0.0.1", **extra):
    return client.post(reverse(LOGIN), {"username": username, "password": password}, REMOTE_ADDR=address, **extra)


def admin_sign_in(client, username, password, address="10.0.0.1", **extra):
    return client.post(
        reverse("admin:login"),
        {"username": username, "password": password, "next": reverse("admin:index")},
        REMOTE_ADDR=address,
        **extra,
    )


def totp_code(key_hex: str, at: float | None = None, step: int = 30, digits: int = 6) -> str:
    """RFC 6238 computed here from the device's key, independently of django-otp."""
    counter = int((time.time() if at is None else at) // step)
    digest = hmac.new(bytes.fromhex(key_hex), counter.to_bytes(8, "big"), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = int.from_bytes(digest[offset : offset + 4], "big") & 0x7FFFFFFF
    return f"{value % 10**digits:0{digits}d}"


@pytest.fixture
def clock():
    with time_machine.travel(dt.datetime(2026, 3, 10, 9, 0, tzinfo=dt.UTC), tick=False) as traveller:
        yield traveller


@pytest.fixture
def superuser(django_user_model):
    return django_user_model.objects.create_superuser("root-admin", "root@example.com", PASSWORD)


# -- one throttle for every way in ----------------------------------------------------------------


def test_fifty_wrong_passwords_lock_the_console_login_until_the_cool_off(tree, clock):
    user = tree.north.staff["collector"]
    client = Client()
    responses = [sign_in(client, user.username, f"guess-{attempt}") for attempt in range(50)]
    assert [r.status_code for r in responses[:4]] == [200] * 4
    assert all(WRONG in r.content.decode() for r in responses[:4])
    # The fifth failure reaches the limit: from then on every try gets the lockout page.
    assert {r.status_code for r in responses[4:]} == {429}
    page = responses[-1].content.decode()
    assert LOCKED in page and "Try again in 15 minutes" in page and 'id="login-error"' in page
    assert responses[-1]["Retry-After"] == str(15 * 60)

    # The right password is refused while locked, and the tries during the lock did not extend it.
    clock.shift(dt.timedelta(minutes=10))
    locked = sign_in(client, user.username, PASSWORD)
    assert locked.status_code == 429 and "Try again in 5 minutes" in locked.content.decode()
    assert client.get(reverse("console:dashboard")).status_code == 302
    # Said in the visitor's language.
    client.cookies[django_settings.LANGUAGE_COOKIE_NAME] = "bn"
    bangla = sign_in(client, user.username, PASSWORD).content.decode()
    assert "5 মিনিট পরে আবার চেষ্টা করুন" in bangla
    client.cookies[django_settings.LANGUAGE_COOKIE_NAME] = "en"

    clock.shift(dt.timedelta(minutes=5, seconds=1))
    assert sign_in(client, user.username, PASSWORD).status_code == 302
    assert client.get(reverse("console:collect")).status_code == 200  # a collector's own page


def test_fifty_wrong_passwords_lock_the_admin_login_too(superuser, clock):
    client = Client()
    responses = [admin_sign_in(client, superuser.username, f"guess-{attempt}") for attempt in range(50)]
    assert [r.status_code for r in responses[:4]] == [200] * 4
    assert {r.status_code for r in responses[4:]} == {429}
    page = responses[-1].content.decode()
    assert LOCKED in page and "Try again in 15 minutes" in page
    assert admin_sign_in(client, superuser.username, PASSWORD).status_code == 429
    assert client.get(reverse("admin:index")).status_code == 302

    clock.shift(dt.timedelta(minutes=15, seconds=1))
    response = admin_sign_in(client, superuser.username, PASSWORD)
    assert response.status_code == 302 and response["Location"] == reverse("admin:index")
    assert client.get(reverse("admin:index")).status_code == 200


def test_console_and_admin_failures_count_together(superuser, clock):
    client = Client()
    for attempt in range(3):
        sign_in(client, superuser.username, f"guess-{attempt}")
    for attempt in range(2):
        admin_sign_in(client, superuser.username, f"guess-{attempt}")
    assert admin_sign_in(client, superuser.username, PASSWORD).status_code == 429
    assert sign_in(client, superuser.username, PASSWORD).status_code == 429
    # One row per (username, address, user agent) in axes' table, summed over the path used.
    assert (
        sum(AccessAttempt.objects.filter(username=superuser.username).values_list("failures_since_start", flat=True))
        == 5
    )


def test_a_locked_out_api_client_gets_json_with_the_retry_time(superuser, clock):
    client = Client()
    for attempt in range(5):
        admin_sign_in(client, superuser.username, f"guess-{attempt}")
    response = admin_sign_in(client, superuser.username, PASSWORD, HTTP_ACCEPT="application/json")
    assert response.status_code == 429
    body = response.json()
    assert body["retry_after"] == 15 * 60 and LOCKED in body["detail"]


@override_settings(AXES_FAILURE_LIMIT=2, AXES_COOLOFF_TIME=dt.timedelta(minutes=3))
def test_limit_and_cool_off_come_from_settings(tree, clock):
    user = tree.north.staff["support"]
    client = Client()
    assert sign_in(client, user.username, "guess").status_code == 200
    locked = sign_in(client, user.username, "guess")
    assert locked.status_code == 429 and "Try again in 3 minutes" in locked.content.decode()
    clock.shift(dt.timedelta(minutes=3, seconds=1))
    assert sign_in(client, user.username, PASSWORD).status_code == 302


def test_the_proxy_header_counts_only_when_configured(tree, settings, clock):
    user = tree.north.staff["collector"]
    # Not configured: X-Forwarded-For is the client's own claim; changing it does not escape the lock.
    for attempt in range(5):
        sign_in(Client(), user.username, "guess", address="10.0.0.5", HTTP_X_FORWARDED_FOR=f"198.51.100.{attempt}")
    assert (
        sign_in(Client(), user.username, PASSWORD, address="10.0.0.5", HTTP_X_FORWARDED_FOR="198.51.100.99").status_code
        == 429
    )
    assert set(AccessAttempt.objects.filter(username=user.username).values_list("ip_address", flat=True)) == {
        "10.0.0.5"
    }

    # Configured: behind the proxy at 127.0.0.1, the address it appended is the client's.
    settings.SONJOG_TRUSTED_PROXY_HEADER = "HTTP_X_FORWARDED_FOR"
    other = tree.north.staff["billing_clerk"]
    for _ in range(5):
        # A forged left-most entry changes nothing: the proxy's own (last) entry counts.
        sign_in(Client(), other.username, "guess", address="127.0.0.1", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.7")
    assert set(AccessAttempt.objects.filter(username=other.username).values_list("ip_address", flat=True)) == {
        "203.0.113.7"
    }
    assert (
        sign_in(Client(), other.username, PASSWORD, address="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.7").status_code
        == 429
    )
    # Another client behind the same proxy is not locked out.
    assert (
        sign_in(Client(), other.username, PASSWORD, address="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.8").status_code
        == 302
    )


def test_client_address_parsing(settings):
    factory = RequestFactory()
    request = factory.get("/", REMOTE_ADDR="10.1.1.1", HTTP_X_FORWARDED_FOR="1.2.3.4")
    assert client_address(request) == "10.1.1.1"
    for header in ("HTTP_X_FORWARDED_FOR", "X-Forwarded-For"):
        settings.SONJOG_TRUSTED_PROXY_HEADER = header
        assert client_address(request) == "1.2.3.4"
    assert client_address(factory.get("/", REMOTE_ADDR="10.1.1.1", HTTP_X_FORWARDED_FOR="junk")) == "10.1.1.1"
    assert client_address(factory.get("/", REMOTE_ADDR="10.1.1.1")) == "10.1.1.1"
    settings.SONJOG_TRUSTED_PROXY_HEADER = "X-Real-IP"
    assert client_address(factory.get("/", REMOTE_ADDR="10.1.1.1", HTTP_X_REAL_IP="2001:db8::1")) == "2001:db8::1"


# -- TOTP second factor -----------------------------------------------------------------------------


def _enrol(client, user) -> TOTPDevice:
    page = reverse("console:two_factor")
    assert "Set up an authenticator app" in client.get(page).content.decode()
    assert client.post(page, {"action": "start"}).status_code == 302
    shown = client.get(page).content.decode()
    device = TOTPDevice.objects.get(user=user, confirmed=False)
    assert "otpauth://totp/Sonjog%3A" in shown and "<svg" in shown and 'class="qr"' in shown
    # The key on the page is the device's key, in base32 for typing by hand.
    import base64

    found = re.search(r'id="two-factor-secret">([A-Z2-7 ]+)<', shown)
    assert found is not None
    secret = found.group(1).replace(" ", "")
    assert base64.b32decode(secret) == bytes.fromhex(device.key)
    response = client.post(page, {"action": "enable", "code": totp_code(device.key)})
    assert response.status_code == 302
    device.refresh_from_db()
    assert device.confirmed
    return device


def test_totp_enrol_then_sign_in_with_a_code(tree, clock):
    user = tree.north.staff["billing_clerk"]
    client = Client()
    assert sign_in(client, user.username, PASSWORD)["Location"] == reverse("console:billing")  # a clerk's landing
    device = _enrol(client, user)
    assert "Two-factor sign-in is on" in client.get(reverse("console:two_factor")).content.decode()
    client.post(reverse("console:logout"))

    # The password alone no longer opens the console: the code is asked for as a second step.
    clock.shift(dt.timedelta(seconds=31))
    laptop = Client()
    response = sign_in(laptop, user.username, PASSWORD)
    verify = reverse("console:two_factor_verify")
    assert response["Location"].startswith(verify)
    blocked = laptop.get(reverse("console:subscribers"))
    assert blocked.status_code == 302 and blocked["Location"].startswith(verify)
    assert laptop.get(reverse("console:invoice_pdf", args=[1])).status_code == 302
    wrong = laptop.post(verify, {"code": "000000" if totp_code(device.key) != "000000" else "111111"})
    assert wrong.status_code == 422 and "That code is not right" in wrong.content.decode()

    clock.shift(dt.timedelta(seconds=31))
    code = totp_code(device.key)
    response = laptop.post(verify, {"code": code, "next": reverse("console:subscribers")})
    assert response.status_code == 302 and response["Location"] == reverse("console:subscribers")
    assert laptop.get(reverse("console:subscribers")).status_code == 200

    # The same code does not open a second session.
    phone = Client()
    sign_in(phone, user.username, PASSWORD, address="10.0.0.9")
    assert phone.post(verify, {"code": code}).status_code == 422
    assert phone.get(reverse("console:dashboard")).status_code == 302

    # Turning it off needs a current code; then the password is enough again.
    clock.shift(dt.timedelta(seconds=31))
    response = laptop.post(reverse("console:two_factor"), {"action": "disable", "code": totp_code(device.key)})
    assert response.status_code == 302
    assert not TOTPDevice.objects.filter(user=user).exists()
    assert sign_in(Client(), user.username, PASSWORD, address="10.0.0.3")["Location"] == reverse("console:billing")


def test_too_many_wrong_codes_end_the_half_signed_in_session_and_lock(tree, clock):
    user = tree.north.staff["support"]
    device = TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    client = Client()
    sign_in(client, user.username, PASSWORD)
    verify = reverse("console:two_factor_verify")
    right = totp_code(device.key)
    statuses = []
    for _ in range(5):
        clock.shift(dt.timedelta(seconds=40))  # past django-otp's own back-off between tries
        wrong = "999999" if right != "999999" else "888888"
        statuses.append(client.post(verify, {"code": wrong}, REMOTE_ADDR="10.0.0.1").status_code)
    assert statuses == [422, 422, 422, 422, 429]
    assert client.get(reverse("console:dashboard")).status_code == 302
    assert sign_in(client, user.username, PASSWORD).status_code == 429


def test_roles_listed_in_the_setting_must_enrol_first(tree, settings, clock):
    settings.SONJOG_REQUIRE_2FA_ROLES = ["owner"]
    owner = tree.root.staff["owner"]
    client = Client()
    response = sign_in(client, owner.username, PASSWORD)
    enrol = reverse("console:two_factor")
    assert response["Location"].startswith(enrol)
    for name in ("dashboard", "subscribers", "billing"):
        blocked = client.get(reverse(f"console:{name}"))
        assert blocked.status_code == 302 and blocked["Location"].startswith(enrol)
    assert "Your role requires two-factor sign-in" in client.get(enrol).content.decode()
    device = _enrol(client, owner)
    assert client.get(reverse("console:dashboard")).status_code == 200
    # It cannot be switched off while the role requires it.
    clock.shift(dt.timedelta(seconds=31))
    page = client.post(enrol, {"action": "disable", "code": totp_code(device.key)})
    assert page.status_code == 422 and "cannot be turned off" in page.content.decode()
    assert TOTPDevice.objects.filter(user=owner, confirmed=True).exists()
    # Other roles are untouched.
    clerk = tree.root.staff["billing_clerk"]
    assert sign_in(Client(), clerk.username, PASSWORD)["Location"] == reverse("console:billing")


def test_an_operator_can_require_two_factor_for_its_money_roles(tree):
    north = tree.north.operator
    north.require_two_factor = True
    north.save(update_fields=["require_two_factor"])
    enrol = reverse("console:two_factor")
    clerk = tree.north.staff["billing_clerk"]
    assert sign_in(Client(), clerk.username, PASSWORD)["Location"].startswith(enrol)
    # Another operator's logins, and the roles that handle no money, are untouched.
    assert sign_in(Client(), tree.root.staff["owner"].username, PASSWORD)["Location"] == reverse("console:dashboard")
    for role, landing in (("collector", "console:collect"), ("support", "console:subscribers")):
        user = tree.north.staff[role]
        assert sign_in(Client(), user.username, PASSWORD)["Location"] == reverse(landing)


def test_unknown_required_roles_are_a_configuration_error(tree, settings):
    from django.core.exceptions import ImproperlyConfigured

    settings.SONJOG_REQUIRE_2FA_ROLES = ["accountant"]
    with pytest.raises(ImproperlyConfigured, match="accountant"):
        sign_in(Client(), tree.root.staff["owner"].username, PASSWORD)


def test_the_second_factor_also_guards_the_admin(superuser, clock):
    device = TOTPDevice.objects.create(user=superuser, name="phone", confirmed=True)
    client = Client()
    assert admin_sign_in(client, superuser.username, PASSWORD).status_code == 302
    blocked = client.get(reverse("admin:index"))
    verify = reverse("console:two_factor_verify")
    assert blocked.status_code == 302 and blocked["Location"].startswith(verify)
    response = client.post(verify, {"code": totp_code(device.key), "next": reverse("admin:index")})
    assert response["Location"] == reverse("admin:index")
    assert client.get(reverse("admin:index")).status_code == 200


# -- sessions ---------------------------------------------------------------------------------------


def test_an_idle_session_expires_and_an_active_one_does_not(tree, clock):
    user = tree.north.staff["billing_clerk"]
    client = Client()
    sign_in(client, user.username, PASSWORD)
    for _ in range(3):
        clock.shift(dt.timedelta(hours=11, minutes=50))
        assert client.get(reverse("console:dashboard")).status_code == 200
    clock.shift(dt.timedelta(hours=12, minutes=6))
    assert client.get(reverse("console:dashboard")).status_code == 302


def test_the_idle_limit_is_a_setting(tree, settings, clock):
    settings.SONJOG_SESSION_IDLE_HOURS = 1
    user = tree.north.staff["billing_clerk"]
    client = Client()
    sign_in(client, user.username, PASSWORD)
    clock.shift(dt.timedelta(minutes=50))
    assert client.get(reverse("console:subscribers")).status_code == 200
    clock.shift(dt.timedelta(minutes=66))
    response = client.get(reverse("console:subscribers"))
    assert response.status_code == 302 and response["Location"].startswith(reverse(LOGIN))


def test_a_session_is_bound_to_its_user_agent(tree):
    user = tree.north.staff["billing_clerk"]
    browser = Client(HTTP_USER_AGENT="Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0")
    sign_in(browser, user.username, PASSWORD)
    assert browser.get(reverse("console:subscribers")).status_code == 200
    thief = Client(HTTP_USER_AGENT="curl/8.5")
    thief.cookies[django_settings.SESSION_COOKIE_NAME] = browser.cookies[django_settings.SESSION_COOKIE_NAME].value
    assert thief.get(reverse("console:subscribers")).status_code == 302
    # The copied cookie ended the session for good, in the original browser too.
    assert browser.get(reverse("console:subscribers")).status_code == 302
    # The admin is bound the same way.
    superuser = type(user).objects.create_superuser("root-ua", "ua@example.com", PASSWORD)
    admin = Client(HTTP_USER_AGENT="Chromium/140")
    admin_sign_in(admin, superuser.username, PASSWORD)
    assert admin.get(reverse("admin:index")).status_code == 200
    admin.defaults["HTTP_USER_AGENT"] = "Other/1"
    assert admin.get(reverse("admin:index")).status_code == 302


def test_log_out_everywhere_still_ends_bound_sessions(tree):
    user = tree.north.staff["billing_clerk"]
    laptop = Client(HTTP_USER_AGENT="Laptop")
    phone = Client(HTTP_USER_AGENT="Phone")
    sign_in(laptop, user.username, PASSWORD)
    sign_in(phone, user.username, PASSWORD, address="10.0.0.9")
    assert phone.get(reverse("console:subscribers")).status_code == 200
    laptop.post(reverse("console:logout_everywhere"))
    assert phone.get(reverse("console:subscribers")).status_code == 302
    assert laptop.get(reverse("console:subscribers")).status_code == 302


# -- headers ----------------------------------------------------------------------------------------


def _assert_security_headers(response):
    policy = response["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "script-src 'self'" in policy and "style-src 'self'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert "frame-ancestors 'none'" in policy
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Content-Type-Options"] == "nosniff"


def test_signed_in_pages_pdfs_and_exports_are_never_stored(tree):
    client = tree.login(tree.root.staff["owner"])
    invoice = Invoice.objects.filter(bill__subscriber__operator=tree.north.operator).first()
    assert invoice is not None
    responses = {
        "page": client.get(reverse("console:dashboard")),
        "fragment": client.get(
            reverse("console:subscribers"), HTTP_HX_REQUEST="true", HTTP_HX_TARGET="subscriber-results"
        ),
        "pdf": client.get(reverse("console:invoice_pdf", args=[invoice.pk])),
        "export": client.get(reverse("console:subscribers_export", args=["csv"])),
        "xlsx": client.get(reverse("console:subscribers_export", args=["xlsx"])),
    }
    assert responses["pdf"]["Content-Type"] == "application/pdf"
    for name, response in responses.items():
        assert response.status_code == 200, name
        assert "no-store" in response["Cache-Control"], name
        assert "private" in response["Cache-Control"], name
        _assert_security_headers(response)
        assert "Strict-Transport-Security" not in response


def test_the_login_page_has_the_headers_and_no_hsts_without_secure_cookies(db):
    client = Client()
    for response in (client.get(reverse(LOGIN)), client.get(reverse(LOGIN), secure=True)):
        _assert_security_headers(response)
        assert "no-store" in response["Cache-Control"]
        assert "Strict-Transport-Security" not in response
    # What SONJOG_SECURE_COOKIES=1 sets (test_settings_read_the_environment); SecurityMiddleware reads
    # it when a handler starts, hence a new client.
    with override_settings(SECURE_HSTS_SECONDS=31536000):
        secure = Client()
        assert secure.get(reverse(LOGIN), secure=True)["Strict-Transport-Security"] == "max-age=31536000"
        assert "Strict-Transport-Security" not in secure.get(reverse(LOGIN))


def test_settings_read_the_environment():
    """The SONJOG_* variables reach the settings (in a fresh interpreter, as a server would start)."""
    probe = (
        "import json, django; django.setup(); from django.conf import settings as s; "
        "print(json.dumps({'hsts': s.SECURE_HSTS_SECONDS, 'limit': s.AXES_FAILURE_LIMIT, "
        "'cooloff': s.AXES_COOLOFF_TIME.total_seconds(), 'idle': s.SESSION_COOKIE_AGE, "
        "'roles': s.SONJOG_REQUIRE_2FA_ROLES, 'proxy': s.SONJOG_TRUSTED_PROXY_HEADER}))"
    )
    names = (
        "SONJOG_SECURE_COOKIES",
        "SONJOG_LOGIN_FAILURE_LIMIT",
        "SONJOG_LOGIN_COOLOFF_MINUTES",
        "SONJOG_SESSION_IDLE_HOURS",
        "SONJOG_REQUIRE_2FA_ROLES",
        "SONJOG_TRUSTED_PROXY_HEADER",
        "SONJOG_HSTS_SECONDS",
    )
    base = {key: value for key, value in os.environ.items() if key not in names}
    base["DJANGO_SETTINGS_MODULE"] = "sonjog.settings"
    root = str(Path(__file__).resolve().parents[3])

    def read(**env: str) -> dict:
        done = subprocess.run(
            [sys.executable, "-c", probe], env={**base, **env}, cwd=root, capture_output=True, text=True, check=True
        )
        return json.loads(done.stdout.strip().splitlines()[-1])

    assert read() == {"hsts": 0, "limit": 5, "cooloff": 900.0, "idle": 12 * 3600, "roles": [], "proxy": ""}
    assert read(
        SONJOG_SECURE_COOKIES="1",
        SONJOG_LOGIN_FAILURE_LIMIT="8",
        SONJOG_LOGIN_COOLOFF_MINUTES="30",
        SONJOG_SESSION_IDLE_HOURS="2",
        SONJOG_REQUIRE_2FA_ROLES="owner, billing_clerk",
        SONJOG_TRUSTED_PROXY_HEADER="HTTP_X_FORWARDED_FOR",
    ) == {
        "hsts": 31536000,
        "limit": 8,
        "cooloff": 1800.0,
        "idle": 7200,
        "roles": ["owner", "billing_clerk"],
        "proxy": "HTTP_X_FORWARDED_FOR",
    }


INLINE_SCRIPT = re.compile(r"<script(?![^>]*\ssrc=)[^>]*>", re.IGNORECASE)
INLINE_HANDLER = re.compile(r"<[^>]+\son[a-z]+\s*=", re.IGNORECASE)
INLINE_STYLE = re.compile(r"<[^>]+\sstyle\s*=", re.IGNORECASE)


def _inline_code(html: str) -> list[str]:
    found = []
    for pattern in (INLINE_SCRIPT, INLINE_HANDLER, INLINE_STYLE):
        found += pattern.findall(html)
    if "javascript:" in html:
        found.append("javascript: URL")
    return found


def test_no_template_has_inline_script_handlers_or_style():
    """The CSP forbids them; this finds one before a browser silently ignores it."""
    root = Path(__file__).resolve().parents[2].parent
    offenders = {}
    for template in root.glob("*/templates/**/*.html"):
        found = _inline_code(template.read_text())
        if found:
            offenders[str(template.relative_to(root))] = found
    assert not offenders


def test_the_admin_renders_nothing_the_policy_blocks(superuser):
    client = Client()
    client.force_login(superuser)
    for url in (reverse("admin:index"), reverse("admin:password_change")):
        response = client.get(url)
        assert response.status_code == 200, url
        _assert_security_headers(response)
        assert not _inline_code(response.content.decode()), url
    anonymous = Client().get(reverse("admin:login"))
    assert not _inline_code(anonymous.content.decode())


def test_console_pages_render_nothing_the_policy_blocks(tree):
    client = tree.login(tree.root.staff["owner"])
    subscriber = tree.north.subscribers[0]
    for url in (
        reverse("console:dashboard"),
        reverse("console:subscribers"),
        reverse("console:subscriber", args=[subscriber.pk]),
        reverse("console:two_factor"),
        reverse("console:messaging_bulk"),
    ):
        response = client.get(url)
        assert response.status_code == 200, url
        assert not _inline_code(response.content.decode()), url


# -- in a real browser --------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_no_csp_violation_in_the_browser(live_server, browser, django_user_model):
    """Chromium reports every blocked script, handler or style: none on the console or the admin."""
    from sonjog.conftest import make_operator
    from sonjog.operators.services import staff_create

    operator = make_operator()
    clerk = staff_create(operator=operator, username="csp-clerk", password=PASSWORD, role="owner").user
    superuser = django_user_model.objects.create_superuser("csp-root", "csp@example.com", PASSWORD)
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(15_000)
    violations: list[str] = []

    def note_violation(text: str) -> None:
        if "Content Security Policy" in text:
            violations.append(text)

    page.on("console", lambda message: note_violation(message.text))
    page.add_init_script(
        "document.addEventListener('securitypolicyviolation', e => console.error("
        "'Content Security Policy violation: ' + e.violatedDirective + ' ' + e.blockedURI));"
    )
    page.goto(live_server.url + reverse(LOGIN))
    page.fill("#id_username", clerk.username)
    page.fill("#id_password", PASSWORD)
    page.click("button:has-text('Sign in')")
    page.wait_for_selector("main h1")
    page.wait_for_selector("#chart svg")
    page.goto(live_server.url + reverse("console:subscribers"))
    page.fill("#id_q", "Test")
    page.wait_for_timeout(600)
    page.goto(live_server.url + reverse("console:two_factor"))
    page.click("button:has-text('Set up an authenticator app')")
    page.wait_for_selector("#two-factor-qr svg")
    # The language switch is a <select data-autosubmit>, wired up by console.js.
    with page.expect_navigation():
        page.select_option("select[name=language]", "bn")
    assert page.locator("html").get_attribute("lang") == "bn"
    page.goto(live_server.url + reverse("console:subscribers"))
    context.close()

    context = browser.new_context()
    page = context.new_page()
    page.on("console", lambda message: note_violation(message.text))
    page.goto(live_server.url + reverse("admin:login"))
    page.fill("#id_username", superuser.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#content")
    page.goto(live_server.url + reverse("admin:password_change"))
    page.wait_for_selector("#content")
    context.close()
    assert not violations
