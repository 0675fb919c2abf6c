"""Django settings for Sonjog, read from the environment (see README "Configuration")."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("SONJOG_VAR_DIR", BASE_DIR / "var"))


def _env_bool(name: str, default: bool = False) -> bool:
    return os.environ.get(name, str(default)).strip().lower() in {"1", "true", "yes", "on"}


DEBUG = _env_bool("SONJOG_DEBUG")
# A development key is acceptable only while debugging or testing; production sets SONJOG_SECRET_KEY.
SECRET_KEY = os.environ.get("SONJOG_SECRET_KEY", "sonjog-insecure-development-key-change-me")
ALLOWED_HOSTS = [h.strip() for h in os.environ.get("SONJOG_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",")]
CSRF_TRUSTED_ORIGINS = [o for o in os.environ.get("SONJOG_CSRF_TRUSTED_ORIGINS", "").split(",") if o]

INSTALLED_APPS = [
    "sonjog.core.admin_apps.SuperuserAdminConfig",  # django.contrib.admin, for superusers only
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "axes",
    "csp",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "procrastinate.contrib.django",
    "sonjog.core",
    "sonjog.operators",
    "sonjog.customers",
    "sonjog.catalog",
    "sonjog.billing",
    "sonjog.network",
    "sonjog.notifications",
    "sonjog.automation",
    "sonjog.gateways",
    "sonjog.flows",
    "sonjog.transfer",
    "sonjog.console",
    "sonjog.portal",
    "sonjog.demo",
    "sonjog.bench",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "csp.middleware.CSPMiddleware",
    # Above everything that reads the database (sessions, users, axes, views): while PostgreSQL is
    # away a request gets a 503 "retrying" page instead of a 500, and the next one reconnects.
    "sonjog.core.middleware.DatabaseUnavailableMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Idle expiry and user-agent binding end a session before anything below trusts it.
    "sonjog.core.middleware.SessionGuardMiddleware",
    "sonjog.core.middleware.PrivateResponseMiddleware",
    "django_otp.middleware.OTPMiddleware",
    # A login that needs its second factor reaches nothing but the code, enrolment and sign-out pages.
    "sonjog.console.middleware.SecondFactorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes asks: it turns a lockout flagged during the view into the lockout response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "sonjog.urls"
WSGI_APPLICATION = None
ASGI_APPLICATION = "sonjog.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Persistent connections are off by default: under the ASGI server (uvicorn) each request's thread kept
# its own connection open, and a burst of 32 clients (gateway notifications) filled PostgreSQL's 100
# connections (sonjog bench --gateways). SONJOG_DB_CONN_MAX_AGE=60 keeps them for a WSGI deployment.
CONN_MAX_AGE = int(os.environ.get("SONJOG_DB_CONN_MAX_AGE", "0"))

if os.environ.get("DATABASE_URL"):
    DATABASES = {"default": dj_database_url.parse(os.environ["DATABASE_URL"], conn_max_age=CONN_MAX_AGE)}
else:
    from sonjog.core.embedded_db import embedded_server_settings

    _embedded = embedded_server_settings(VAR_DIR / "pgdata", os.environ.get("SONJOG_DATABASE_NAME", "sonjog"))
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "HOST": _embedded["HOST"],
            "USER": _embedded["USER"],
            "NAME": _embedded["NAME"],
            "PASSWORD": "",
            "CONN_MAX_AGE": CONN_MAX_AGE,
        }
    }
DATABASES["default"]["ENGINE"] = "django.db.backends.postgresql"
DATABASES["default"].setdefault("TEST", {})["NAME"] = os.environ.get("SONJOG_TEST_DATABASE", "test_sonjog")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# django-axes first: it refuses a locked-out (username, address) before any backend checks the password,
# on every path that calls django.contrib.auth.authenticate with the request (console, admin, API, portal).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    # Django's ModelBackend with module access: a login loses the permissions of the console sections
    # its operator was not given (sonjog.operators.modules).
    "sonjog.operators.backends.ModuleAccessBackend",
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en"
# English dates day first, as in Bangladesh (sonjog/formats/en); Bangla uses Django's own formats.
FORMAT_MODULE_PATH = ["sonjog.formats"]
LANGUAGES = [("en", _("English")), ("bn", _("Bangla"))]
LOCALE_PATHS = [BASE_DIR / "sonjog" / "locale"]
TIME_ZONE = os.environ.get("SONJOG_TIME_ZONE", "Asia/Dhaka")
USE_I18N = True
USE_TZ = True

# The default currency of new operators; each operator may set its own.
SONJOG_CURRENCY = os.environ.get("SONJOG_CURRENCY", "BDT")
# Seconds within which a second identical payment is refused unless confirmed (DESIGN section 4).
SONJOG_DUPLICATE_PAYMENT_WINDOW_SECONDS = int(os.environ.get("SONJOG_DUPLICATE_PAYMENT_WINDOW_SECONDS", "30"))
# How long a call to a payment gateway may take before its outcome counts as unknown (rechecked later).
SONJOG_GATEWAY_TIMEOUT_SECONDS = float(os.environ.get("SONJOG_GATEWAY_TIMEOUT_SECONDS", "10"))
# Hosts a payment gateway's signed webhook may name for its signing certificate (bKash's notifications
# are signed like Amazon SNS messages); comma-separated. The local emulators serve theirs on 127.0.0.1.
SONJOG_GATEWAY_CERT_HOSTS = [
    host.strip()
    for host in os.environ.get("SONJOG_GATEWAY_CERT_HOSTS", "sns.ap-southeast-1.amazonaws.com").split(",")
    if host.strip()
]
# Business dates (activation, payment, adjustment, package change, termination) may lie at most this
# many days ahead; how far back is each operator's start of records (default two years).
SONJOG_BUSINESS_DATE_HORIZON_DAYS = int(os.environ.get("SONJOG_BUSINESS_DATE_HORIZON_DAYS", "92"))

# Encrypts router credentials at rest; keep it stable (changing it makes stored credentials unreadable).
SONJOG_FIELD_KEY = os.environ.get("SONJOG_FIELD_KEY", SECRET_KEY)
# The router outbox: attempts before a command is marked failed, and the wait between attempts.
SONJOG_OUTBOX_MAX_ATTEMPTS = int(os.environ.get("SONJOG_OUTBOX_MAX_ATTEMPTS", "10"))
SONJOG_OUTBOX_RETRY_SECONDS = int(os.environ.get("SONJOG_OUTBOX_RETRY_SECONDS", "120"))
# The worker (sonjog.core.worker): how often each worker records its heartbeat; how long a worker may
# stay silent before its running jobs are queued again for another; how long a stopping worker waits
# for its running jobs before cancelling those that can be cancelled.
SONJOG_WORKER_HEARTBEAT_SECONDS = float(os.environ.get("SONJOG_WORKER_HEARTBEAT_SECONDS", "10"))
SONJOG_WORKER_STALLED_SECONDS = float(os.environ.get("SONJOG_WORKER_STALLED_SECONDS", "30"))
SONJOG_WORKER_SHUTDOWN_SECONDS = float(os.environ.get("SONJOG_WORKER_SHUTDOWN_SECONDS", "30"))
# A drop of this share of online subscribers within the window raises a "possible network fault".
SONJOG_ONLINE_DROP_PERCENT = int(os.environ.get("SONJOG_ONLINE_DROP_PERCENT", "30"))
SONJOG_ONLINE_DROP_WINDOW_MINUTES = int(os.environ.get("SONJOG_ONLINE_DROP_WINDOW_MINUTES", "10"))
# RADIUS interim-update interval; a session silent for 3 intervals is closed as stale.
SONJOG_RADIUS_INTERIM_SECONDS = int(os.environ.get("SONJOG_RADIUS_INTERIM_SECONDS", "300"))

# Backups (pg_dump custom format) and retention of operational logs (never money or audit rows).
SONJOG_BACKUP_DIR = os.environ.get("SONJOG_BACKUP_DIR", str(VAR_DIR / "backups"))
SONJOG_BACKUP_KEEP = int(os.environ.get("SONJOG_BACKUP_KEEP", "7"))
SONJOG_PG_BIN_DIR = os.environ.get("SONJOG_PG_BIN_DIR", "")
SONJOG_RETENTION_FINISHED_JOBS_DAYS = int(os.environ.get("SONJOG_RETENTION_FINISHED_JOBS_DAYS", "30"))
SONJOG_RETENTION_OUTBOX_ATTEMPTS_DAYS = int(os.environ.get("SONJOG_RETENTION_OUTBOX_ATTEMPTS_DAYS", "180"))
SONJOG_RETENTION_ONLINE_SAMPLES_DAYS = int(os.environ.get("SONJOG_RETENTION_ONLINE_SAMPLES_DAYS", "90"))
SONJOG_RETENTION_JOB_RUNS_DAYS = int(os.environ.get("SONJOG_RETENTION_JOB_RUNS_DAYS", "180"))
SONJOG_RETENTION_BATCH_SIZE = int(os.environ.get("SONJOG_RETENTION_BATCH_SIZE", "5000"))

# Public base URL of this installation; providers such as Twilio post delivery reports under it.
SONJOG_PUBLIC_URL = os.environ.get("SONJOG_PUBLIC_URL", "")
# Operators' gateway URLs may lead to loopback, private, link-local or reserved addresses only when
# this is on (a gateway on the installation's own network; tests and the demo): sonjog.core.outbound.
SONJOG_ALLOW_PRIVATE_OUTBOUND = _env_bool("SONJOG_ALLOW_PRIVATE_OUTBOUND")
# Minutes before the 2nd, 3rd and 4th attempt of a message that failed temporarily.
SONJOG_NOTIFY_RETRY_MINUTES = [int(m) for m in os.environ.get("SONJOG_NOTIFY_RETRY_MINUTES", "1,5,15").split(",")]
EMAIL_HOST = os.environ.get("SONJOG_EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("SONJOG_EMAIL_PORT", "25"))
DEFAULT_FROM_EMAIL = os.environ.get("SONJOG_DEFAULT_FROM_EMAIL", "billing@localhost")

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

LOGIN_URL = "console:login"

# -- sign-in throttle (django-axes), shared by the console, the admin and anything else that signs in --
AXES_FAILURE_LIMIT = int(os.environ.get("SONJOG_LOGIN_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = dt.timedelta(minutes=int(os.environ.get("SONJOG_LOGIN_COOLOFF_MINUTES", "15")))
# Failures count per (username, address): a wrong guess from one place does not lock the owner out elsewhere.
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
# Tries refused during a lockout do not restart it, so the retry time the page names holds.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_CLIENT_IP_CALLABLE = "sonjog.core.client.client_address"
AXES_LOCKOUT_CALLABLE = "sonjog.console.views.auth.lockout_response"
AXES_SENSITIVE_PARAMETERS = ["username", "ip_address", "code"]
# The request header (request.META name, e.g. HTTP_X_FORWARDED_FOR) a trusted reverse proxy sets to the
# client's address; empty: REMOTE_ADDR only, since any client can send X-Forwarded-For itself.
SONJOG_TRUSTED_PROXY_HEADER = os.environ.get("SONJOG_TRUSTED_PROXY_HEADER", "").strip()

# -- second factor (django-otp TOTP) --
OTP_TOTP_ISSUER = os.environ.get("SONJOG_OTP_ISSUER", "Sonjog")
# Staff roles (operators.StaffRole values, plus "superuser") that must use a TOTP code to sign in.
# Installation-wide for now; a per-operator switch belongs on Operator once its migrations allow it.
SONJOG_REQUIRE_2FA_ROLES = [
    role.strip() for role in os.environ.get("SONJOG_REQUIRE_2FA_ROLES", "").split(",") if role.strip()
]

# -- sessions --
SONJOG_SESSION_IDLE_HOURS = float(os.environ.get("SONJOG_SESSION_IDLE_HOURS", "12"))
# The cookie and the stored session live as long as the idle limit; SessionGuardMiddleware moves both
# forward as the login is used and ends a session that was idle longer, or that changed user agent.
SESSION_COOKIE_AGE = int(SONJOG_SESSION_IDLE_HOURS * 3600)

SESSION_COOKIE_SECURE = _env_bool("SONJOG_SECURE_COOKIES")
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SESSION_COOKIE_HTTPONLY = True

# -- response headers --
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
# HSTS only where the installation says it is served over HTTPS: a plain-HTTP LAN install must not
# teach browsers to refuse it.
SECURE_HSTS_SECONDS = int(os.environ.get("SONJOG_HSTS_SECONDS", "31536000")) if SESSION_COOKIE_SECURE else 0
# No inline script or style anywhere (console behaviour lives in console/static/console/console.js,
# htmx is configured not to inject its indicator <style>); the Django admin needs nothing more.
# Images, fonts, htmx requests and the SSE stream fall back to default-src 'self'; so does object-src,
# which keeps the browser's own PDF viewer working for invoices.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("SONJOG_LOG_LEVEL", "WARNING")},
    "loggers": {"procrastinate": {"level": os.environ.get("SONJOG_WORKER_LOG_LEVEL", "WARNING")}},
}
