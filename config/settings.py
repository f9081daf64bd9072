"""OrderDeck settings: one module, everything that differs between machines comes from the environment.

Every variable is listed, with its default, in .env.example. Two modes:
- ``ORDERDECK_MODE=demo`` (the default): SQLite in the data folder, the filesystem Celery broker, the
  local HubSpot sandbox, a generated secret key. Needs no server.
- ``ORDERDECK_MODE=production``: SECRET_KEY is required, DEBUG is off, and every HTTPS setting that
  ``manage.py check --deploy`` asks for is on.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import dj_database_url
import django_stubs_ext
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

# Lets annotations such as admin.ModelAdmin[Order] work at run time too.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent


def env(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in env(name, default).split(",") if item.strip()]


MODE = env("ORDERDECK_MODE", "demo")
if MODE not in {"demo", "production"}:
    raise ImproperlyConfigured("ORDERDECK_MODE must be 'demo' or 'production'.")
PRODUCTION = MODE == "production"

DATA_DIR = Path(env("ORDERDECK_DATA_DIR", str(BASE_DIR / "data")))
DATA_DIR.mkdir(parents=True, exist_ok=True)

# Production never falls back to the demo's SQLite, filesystem broker or sandbox credentials: it refuses to
# start, naming everything that is missing at once (one restart to fix, not one per variable).
_PRODUCTION_REQUIRED = (
    "SECRET_KEY",
    "DATABASE_URL",
    "CELERY_BROKER_URL",
    "HUBSPOT_ACCESS_TOKEN",
    "HUBSPOT_CLIENT_SECRET",
)
if PRODUCTION and (_missing := [name for name in _PRODUCTION_REQUIRED if not env(name).strip()]):
    raise ImproperlyConfigured(
        f"ORDERDECK_MODE=production needs these settings, which are not set: {', '.join(_missing)}. "
        "See .env.example."
    )

SECRET_KEY = env("SECRET_KEY")
if not SECRET_KEY:
    # Demo and tests only: a key that is fixed per data folder, so sessions survive a restart.
    _key_file = DATA_DIR / "demo-secret-key"
    if not _key_file.exists():
        import secrets

        _key_file.write_text(secrets.token_urlsafe(50))
    SECRET_KEY = _key_file.read_text().strip()

DEBUG = env_bool("DEBUG", default=not PRODUCTION)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "" if PRODUCTION else "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    # Django's widget templates, found by the project's template engine (FORM_RENDERER below).
    "django.forms",
    "django_htmx",
    # Partials are registered as a builtin below, so moving to Django 6's own partials only touches settings.
    "template_partials.apps.SimpleAppConfig",
    "hubspot_sync",
    "pipelines",
    "orders",
    "carts",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Every page needs a login unless its view is marked @login_not_required.
    # https://docs.djangoproject.com/en/5.2/ref/middleware/#django.contrib.auth.middleware.LoginRequiredMiddleware
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Content-Security-Policy on every response, and no-store on every page a signed-in person sees.
    "config.middleware.SecurityHeadersMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES: list[dict[str, Any]] = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "config.context_processors.banners",
                "config.permissions.navigation",
            ],
            "loaders": [
                (
                    "template_partials.loader.Loader",
                    [
                        (
                            "django.template.loaders.cached.Loader",
                            [
                                "django.template.loaders.filesystem.Loader",
                                "django.template.loaders.app_directories.Loader",
                            ],
                        )
                    ],
                )
            ],
            "builtins": [
                "template_partials.templatetags.partials",
                "django_htmx.templatetags.django_htmx",
            ],
        },
    }
]
# Forms and widgets render with the engine above, so templates/ can override a widget's template (the admin's
# date-and-time pair, templates/admin/widgets/split_datetime.html, labels its two inputs).
# https://docs.djangoproject.com/en/5.2/ref/forms/renderers/#templatessetting
FORM_RENDERER = "django.forms.renderers.TemplatesSetting"

# --- database ----------------------------------------------------------------------------------------
# DATABASE_URL (postgres://user:pass@host:5432/name) in production; SQLite in the data folder otherwise.
_SQLITE_PATH = DATA_DIR / "orderdeck.sqlite3"
DATABASES = {
    "default": dj_database_url.parse(
        env("DATABASE_URL", f"sqlite:///{_SQLITE_PATH}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        # WAL lets the web server read while a worker writes; IMMEDIATE takes the write lock at BEGIN so two
        # writers wait for each other (timeout) instead of failing with "database is locked" mid-transaction.
        # https://docs.djangoproject.com/en/5.2/ref/databases/#sqlite-transaction-behavior
        # cache_size: SQLite's default page cache is 2 MB; the orders table's indexes alone outgrow that at
        # 100,000 orders, and each write then reads its index pages again. The memory is taken as pages are
        # read, so a short web request costs no more. https://www.sqlite.org/pragma.html#pragma_cache_size
        "init_command": (
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=20000; "
            f"PRAGMA cache_size=-{env_int('SQLITE_CACHE_MB', 64) * 1024};"
        ),
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
    # A file, not :memory:, so a real Celery worker process started by the tests sees the test database;
    # one per test process, so two test runs (or a test run and a benchmark) never share one.
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / f"test-orderdeck-{os.getpid()}.sqlite3")}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)
STATICFILES_DIRS = [
    BASE_DIR / "static",
    # Front-end packages come from the npm registry (package.json, pinned) and are served from node_modules.
    ("vendor/sortablejs", BASE_DIR / "node_modules" / "sortablejs"),
]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = not PRODUCTION

# --- security ------------------------------------------------------------------------------------------
# https://docs.djangoproject.com/en/5.2/howto/deployment/checklist/
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", PRODUCTION)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", PRODUCTION)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", PRODUCTION)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000 if PRODUCTION else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", PRODUCTION)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", PRODUCTION)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Django 5.2 has no CSP of its own; config.middleware sends this one on every response. No inline scripts,
# event handlers or <style> elements anywhere (behaviour lives in static/js, styles in static/css; htmx's
# own indicator <style> is turned off in base.html). https://developer.mozilla.org/docs/Web/HTTP/CSP
CONTENT_SECURITY_POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "font-src": "'self'",
    "connect-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'self'",
    "frame-ancestors": "'none'",
    "form-action": "'self'",
}
if env_bool("SECURE_PROXY_SSL_HEADER", False):
    # Behind a proxy that terminates TLS and sets X-Forwarded-Proto.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# /healthz is probed by load balancers over plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]

# --- cache and the sign-in throttle -------------------------------------------------------------------
# The cache holds the sign-in throttle's counters, so every web process must share it where there are several
# (gunicorn's workers): CACHE_URL=redis://… (defaults to the Celery broker when that is Redis). Without one it
# is each process's memory, which is enough for the demo's single web server.
# https://docs.djangoproject.com/en/5.2/topics/cache/#redis
_BROKER_FOR_CACHE = env("CELERY_BROKER_URL")
CACHE_URL = env(
    "CACHE_URL", _BROKER_FOR_CACHE if _BROKER_FOR_CACHE.startswith(("redis://", "rediss://")) else ""
)
CACHES: dict[str, dict[str, Any]] = {
    "default": (
        {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": CACHE_URL,
            "KEY_PREFIX": "orderdeck",
        }
        if CACHE_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "orderdeck"}
    )
}
# Failed sign-ins (on /login/ and /admin/login/) are counted per account and per client address over a
# window; at the limit, that account or address may not sign in (even with the right password) until the
# lockout ends, and a warning is logged. A successful sign-in clears its account's count. The address limit
# is higher: an office may share one address.
LOGIN_THROTTLE_ACCOUNT_FAILURES = env_int("LOGIN_THROTTLE_ACCOUNT_FAILURES", 5)
LOGIN_THROTTLE_ADDRESS_FAILURES = env_int("LOGIN_THROTTLE_ADDRESS_FAILURES", 20)
LOGIN_THROTTLE_WINDOW_S = env_int("LOGIN_THROTTLE_WINDOW_S", 15 * 60)
LOGIN_THROTTLE_LOCKOUT_S = env_int("LOGIN_THROTTLE_LOCKOUT_S", 15 * 60)
# How many proxies in front of the app append to X-Forwarded-For: the client's address is the entry that many
# places from the right. 0 (the default) takes the connection's address and ignores the header, which a client
# can forge. https://developer.mozilla.org/docs/Web/HTTP/Headers/X-Forwarded-For#selecting_an_ip_address
LOGIN_THROTTLE_PROXY_COUNT = env_int("LOGIN_THROTTLE_PROXY_COUNT", 0)

# --- email ---------------------------------------------------------------------------------------------
# Django's SMTP backend everywhere (an empty value means the default, here and below). The demo's mail
# server (`manage.py mailserver`, started by `demo`) listens on 127.0.0.1:MAILBOX_PORT without TLS and keeps
# what it receives in MAILBOX_DIR (the Mailbox page).
EMAIL_BACKEND = env("EMAIL_BACKEND") or "django.core.mail.backends.smtp.EmailBackend"
EMAIL_FILE_PATH = DATA_DIR / "sent-mail"
MAILBOX_DIR = Path(env("MAILBOX_DIR") or DATA_DIR / "mailbox")
MAILBOX_PORT = env_int("MAILBOX_PORT", 8025)
EMAIL_HOST = env("EMAIL_HOST") or ("localhost" if PRODUCTION else "127.0.0.1")
EMAIL_PORT = env_int("EMAIL_PORT", 587 if PRODUCTION else MAILBOX_PORT)
EMAIL_HOST_USER = env("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", PRODUCTION)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 20)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "OrderDeck <orders@example.com>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- carts and recovery emails ------------------------------------------------------------------------------
# A cart is abandoned when it is live, has no order, its status (hs_external_status, free text in HubSpot) is
# none of CARTS_COMPLETED_STATUSES (matched exactly; UNCONFIRMED which values stores send), and HubSpot has
# seen no change to it for CARTS_ABANDONED_AFTER_MIN minutes.
CARTS_ABANDONED_AFTER_MIN = env_int("CARTS_ABANDONED_AFTER_MIN", 60)
CARTS_COMPLETED_STATUSES = env_list("CARTS_COMPLETED_STATUSES", "completed,checkout_completed,ordered")
# Who may get a recovery email: "anyone" with an address, or only contacts whose CARTS_CONSENT_PROPERTY is
# "true" ("marketing"; hs_marketable_status is UNCONFIRMED as the right property for every portal).
CARTS_CONSENT_POLICY = env("CARTS_CONSENT_POLICY") or "anyone"
if CARTS_CONSENT_POLICY not in {"anyone", "marketing"}:
    raise ImproperlyConfigured("CARTS_CONSENT_POLICY must be 'anyone' or 'marketing'.")
CARTS_CONSENT_PROPERTY = env("CARTS_CONSENT_PROPERTY") or "hs_marketable_status"
# At most one recovery email per contact (address) in this many hours, across all their carts.
CARTS_EMAIL_CAP_HOURS = env_int("CARTS_EMAIL_CAP_HOURS", 24)
# How long the signed click and unsubscribe links in a recovery email work.
CARTS_LINK_MAX_AGE_DAYS = env_int("CARTS_LINK_MAX_AGE_DAYS", 30)
# The recovery sequence (carts.sequences): emails go out only within CARTS_SEND_WINDOW ("HH:MM-HH:MM") in the
# store's time zone (CARTS_STORE_TIMEZONES: JSON {"store": "Europe/Paris"} or "store=Europe/Paris,..." by
# hs_source_store; other stores CARTS_DEFAULT_TIMEZONE); each tick requests at most CARTS_SEQUENCE_BATCH
# emails per step (a bounded, constant number of queries whatever the number of carts).
CARTS_SEND_WINDOW = env("CARTS_SEND_WINDOW") or "08:00-21:00"
CARTS_STORE_TIMEZONES = env("CARTS_STORE_TIMEZONES")
CARTS_DEFAULT_TIMEZONE = env("CARTS_DEFAULT_TIMEZONE") or "UTC"
CARTS_SEQUENCE_BATCH = env_int("CARTS_SEQUENCE_BATCH", 200)
# A send still queued this long while no send made progress had its task lost (a worker or broker restart):
# the resume sweep queues it again. A send left "sending" this long after EMAIL_TIMEOUT is marked uncertain.
CARTS_SEND_REQUEUE_S = env_int("CARTS_SEND_REQUEUE_S", 60)
CARTS_SENDING_STALE_S = env_int("CARTS_SENDING_STALE_S", 60)
# Temporary SMTP refusals (4xx) and connection errors are retried this many times, backing off up to the cap.
CARTS_SEND_MAX_RETRIES = env_int("CARTS_SEND_MAX_RETRIES", 8)
# A bulk send's emails go out in batches of this many per task: one refresh from HubSpot (a few batch reads)
# for the batch's carts, then each is checked and sent.
CARTS_SEND_BATCH = env_int("CARTS_SEND_BATCH", 50)
CARTS_SEND_RETRY_CAP_S = env_int("CARTS_SEND_RETRY_CAP_S", 600)
# A cart that gains an order (or a completed status) within this many days after a recovery email was
# recovered by it; recovery send logs, clicks and suppression reasons are kept CARTS_RETENTION_DAYS days.
CARTS_ATTRIBUTION_DAYS = env_int("CARTS_ATTRIBUTION_DAYS", 7)
CARTS_RETENTION_DAYS = env_int("CARTS_RETENTION_DAYS", 365)
RECOVERY_FROM_EMAIL = env("RECOVERY_FROM_EMAIL") or DEFAULT_FROM_EMAIL
# The absolute base of the links in emails (click tracking, unsubscribe). Production defaults to https:// and
# the first of ALLOWED_HOSTS; `check --deploy` warns when it is not https.
SITE_URL = (
    env("SITE_URL")
    or (
        f"https://{ALLOWED_HOSTS[0].lstrip('.')}" if PRODUCTION and ALLOWED_HOSTS else "http://127.0.0.1:8000"
    )
).rstrip("/")

# --- HubSpot ---------------------------------------------------------------------------------------------
SANDBOX_PORT = env_int("SANDBOX_PORT", 8765)
HUBSPOT_API_BASE = env(
    "HUBSPOT_API_BASE", "https://api.hubapi.com" if PRODUCTION else f"http://127.0.0.1:{SANDBOX_PORT}"
)
# A private app's access token. The demo's sandbox accepts this default; production must set its own.
HUBSPOT_ACCESS_TOKEN = env("HUBSPOT_ACCESS_TOKEN", "" if PRODUCTION else "demo-sandbox-token")
# The app's client secret signs webhooks (X-HubSpot-Signature-v3).
HUBSPOT_CLIENT_SECRET = env("HUBSPOT_CLIENT_SECRET", "" if PRODUCTION else "demo-sandbox-client-secret")
# Private apps on Professional and Enterprise get 190 requests per rolling 10 s; Starter 100.
HUBSPOT_RATE_LIMIT_PER_10S = env_int("HUBSPOT_RATE_LIMIT_PER_10S", 190)
HUBSPOT_SEARCH_PER_S = env_int("HUBSPOT_SEARCH_PER_S", 5)
# https://developers.hubspot.com/docs/developer-tooling/platform/usage-guidelines
# The share of those limits the shared limiter uses (it stretches each window), leaving room for jitter.
HUBSPOT_RATE_LIMIT_SHARE = float(env("HUBSPOT_RATE_LIMIT_SHARE", "0.95"))
# The spread of the network's latency (slowest minus fastest request), added to the 1-second search window:
# searches sent a window apart may arrive closer by that much. UNCONFIRMED for a real network; 100 ms covers
# the sandbox's benchmark latency of 150 ± 50 ms.
HUBSPOT_LIMITER_LATENCY_SPREAD_MS = env_int("HUBSPOT_LIMITER_LATENCY_SPREAD_MS", 100)
# Whether a search call also counts toward the 10-second limit: UNCONFIRMED for private apps (HubSpot says
# the public-app limit excludes search), so off by default and switchable.
HUBSPOT_SEARCH_COUNTS_TOWARD_GENERAL = env_bool("HUBSPOT_SEARCH_COUNTS_TOWARD_GENERAL", False)
# Where every process shares the limiter: redis://… (defaults to the Celery broker when that is Redis),
# sqlite:///path, or empty for the embedded SQLite file in the data folder. Off only for ingest benchmarks.
_HUBSPOT_BROKER = env("CELERY_BROKER_URL")
HUBSPOT_LIMITER_URL = env(
    "HUBSPOT_LIMITER_URL", _HUBSPOT_BROKER if _HUBSPOT_BROKER.startswith(("redis://", "rediss://")) else ""
)
HUBSPOT_LIMITER_ENABLED = env_bool("HUBSPOT_LIMITER_ENABLED", True)
# Processes that call HubSpot with the same app share one name (and so one budget).
HUBSPOT_LIMITER_NAME = env("HUBSPOT_LIMITER_NAME", "hubspot")
# A call gives up waiting for a permit after this long (and is retried later by its task).
HUBSPOT_LIMITER_MAX_WAIT_S = float(env("HUBSPOT_LIMITER_MAX_WAIT_S", "60"))
# requests has no default timeout; every call gets these.
HUBSPOT_CONNECT_TIMEOUT_S = float(env("HUBSPOT_CONNECT_TIMEOUT_S", "5"))
HUBSPOT_READ_TIMEOUT_S = float(env("HUBSPOT_READ_TIMEOUT_S", "30"))
# Retries of 429s, 423s, 5xx, timeouts and connection errors: how many after the first attempt, the total
# time one call may spend sleeping between them, and the backoff's base and cap (full jitter).
HUBSPOT_MAX_RETRIES = env_int("HUBSPOT_MAX_RETRIES", 5)
HUBSPOT_RETRY_MAX_WAIT_S = float(env("HUBSPOT_RETRY_MAX_WAIT_S", "60"))
HUBSPOT_RETRY_BASE_S = float(env("HUBSPOT_RETRY_BASE_S", "0.5"))
HUBSPOT_RETRY_CAP_S = float(env("HUBSPOT_RETRY_CAP_S", "20"))
# How long to wait after a ten-second-window 429 without Retry-After (HubSpot does not always send one):
# one window by default. How soon a rolling window frees a slot is UNCONFIRMED.
HUBSPOT_RETRY_429_WAIT_S = float(env("HUBSPOT_RETRY_429_WAIT_S", "10"))
# Whether a create that carries objectWriteTraceIds is retried after a timeout or 5xx. HubSpot documents
# the trace id for partial batch results; that it also de-duplicates a repeated create is UNCONFIRMED.
HUBSPOT_RETRY_TRACED_CREATES = env_bool("HUBSPOT_RETRY_TRACED_CREATES", True)
# HubSpot answers 414 to long URIs; its limit is UNCONFIRMED. Properties beyond this URL length are read by
# batch read instead.
HUBSPOT_MAX_URL_LENGTH = env_int("HUBSPOT_MAX_URL_LENGTH", 8000)

# --- Sync (pull from HubSpot) ------------------------------------------------------------------------------
# Requests kept in flight by a full sync (object types in parallel, concurrent batch reads): at ~200 ms a call
# it takes about four to reach 19 calls a second; more only queue at the shared limiter. Where HubSpot's limit
# is higher (or off, as in the ingest benchmark) the listing threads hold one each for the whole run, and the
# batch reads need the rest: 12 measured ~10 % faster than 8 on PostgreSQL.
HUBSPOT_SYNC_CONCURRENCY = env_int("HUBSPOT_SYNC_CONCURRENCY", 12)
# Pages fetched but not yet written, at most: bounds memory whatever the size of the portal (a page of 100
# records is about a megabyte once parsed). Room for a few write batches lets fetchers keep going while the
# writer commits.
HUBSPOT_SYNC_QUEUE_PAGES = env_int("HUBSPOT_SYNC_QUEUE_PAGES", 48)
# Search lags writes by a few seconds (UNCONFIRMED how long): an incremental window ends this long before the
# run starts, so a change not yet searchable falls into the next window instead of being missed.
HUBSPOT_SEARCH_LAG_S = float(env("HUBSPOT_SEARCH_LAG_S", "5"))
# Extra overlap between windows, for a portal whose search sometimes lags more (re-reads cost calls).
HUBSPOT_SYNC_LOOKBACK_S = env_int("HUBSPOT_SYNC_LOOKBACK_S", 0)
# A run's lease: renewed every page, so a crashed run frees it this long after its last page.
HUBSPOT_SYNC_LEASE_S = env_int("HUBSPOT_SYNC_LEASE_S", 300)
# v4 association batch read takes up to 1,000 ids a call.
HUBSPOT_ASSOCIATION_BATCH = env_int("HUBSPOT_ASSOCIATION_BATCH", 1000)
# Search never returns archived records, so every Nth incremental run compares HubSpot's live count with the
# cache's (one call per type) and, when they differ, reads the archived list.
# Webhooks report deletions at once.
HUBSPOT_SYNC_DELETION_CHECK_EVERY = env_int("HUBSPOT_SYNC_DELETION_CHECK_EVERY", 10)
# How often the scheduled sync reads property definitions and order pipelines again, in minutes (a record
# naming an unknown stage refreshes pipelines at once).
HUBSPOT_SYNC_DEFINITIONS_EVERY_MIN = env_int("HUBSPOT_SYNC_DEFINITIONS_EVERY_MIN", 15)
# The HubSpot account's time zone (Settings → Account defaults): "The daily limit resets at midnight based on
# your time zone setting" (https://developers.hubspot.com/docs/guides/apps/api-usage/usage-details).
HUBSPOT_ACCOUNT_TIMEZONE = env("HUBSPOT_ACCOUNT_TIMEZONE", "UTC")
# While the daily limit pauses sync and push, beat's sweep tries one cheap call at most this often (seconds);
# when HubSpot answers, the pause ends before the reset.
HUBSPOT_DAILY_LIMIT_PROBE_S = env_int("HUBSPOT_DAILY_LIMIT_PROBE_S", 600)
# How often beat runs incremental sync, in seconds.
HUBSPOT_SYNC_INTERVAL_S = env_int("HUBSPOT_SYNC_INTERVAL_S", 60)
# SQLite only: while a full run writes, the WAL is checkpointed every this many pages (SQLite's default is
# 1,000, i.e. every 4 MB, each checkpoint with its fsyncs), and once more at the run's end.
# https://www.sqlite.org/wal.html#automatic_checkpoint
HUBSPOT_SYNC_SQLITE_CHECKPOINT_PAGES = env_int("HUBSPOT_SYNC_SQLITE_CHECKPOINT_PAGES", 16_000)
# PostgreSQL only: a full run's commits don't wait for the WAL flush (synchronous_commit off for its own
# connection). A crash may lose the last committed pages, which the resumed run reads again with their
# cursor. https://www.postgresql.org/docs/current/wal-async-commit.html
HUBSPOT_SYNC_ASYNC_COMMIT = env_bool("HUBSPOT_SYNC_ASYNC_COMMIT", True)
# PostgreSQL only: a full run writes the records it reads by id (line items) on a second connection, beside
# the listed pages; one connection leaves the server idle during each of its round trips.
HUBSPOT_SYNC_SECOND_WRITER = env_bool("HUBSPOT_SYNC_SECOND_WRITER", True)
# While a full run fetches and writes, the interpreter hands the GIL between threads this often (Python's
# default is 5 ms). The writer gives the GIL up for every database call (for every row of a batch on
# SQLite), and takes it back only when a parsing fetcher thread is made to yield: a shorter interval keeps
# the writer, the sync's bottleneck, from waiting. UNCONFIRMED best value; measured with `benchmark sync`.
HUBSPOT_SYNC_SWITCH_INTERVAL_S = float(env("HUBSPOT_SYNC_SWITCH_INTERVAL_S", "0.0005"))

# --- Push (the outbox, DESIGN.md §5) ------------------------------------------------------------------------
# An edit waits this long for more edits of the same record, so quick successive moves make one write; while
# edits keep coming it goes at the latest after HUBSPOT_PUSH_DEBOUNCE_MAX_S.
HUBSPOT_PUSH_DEBOUNCE_S = float(env("HUBSPOT_PUSH_DEBOUNCE_S", "0.2"))
HUBSPOT_PUSH_DEBOUNCE_MAX_S = float(env("HUBSPOT_PUSH_DEBOUNCE_MAX_S", "2"))
# Records per batch read and batch update ("limited to 100 records per request").
# https://developers.hubspot.com/docs/guides/apps/api-usage/usage-details
HUBSPOT_PUSH_BATCH = env_int("HUBSPOT_PUSH_BATCH", 100)
# While a bulk edit is under way (HUBSPOT_PUSH_FILL_MIN edits or more in the last second), a batch with room
# left waits until its oldest edit is this old, so the edits share calls; everyday edits don't wait.
HUBSPOT_PUSH_FILL_S = float(env("HUBSPOT_PUSH_FILL_S", "1"))
HUBSPOT_PUSH_FILL_MIN = env_int("HUBSPOT_PUSH_FILL_MIN", 25)
# A worker renews its claim on the changes it sends every third of this; a claim not renewed for this long
# belonged to a worker that died, and its changes are sent again.
HUBSPOT_PUSH_LEASE_S = float(env("HUBSPOT_PUSH_LEASE_S", "30"))
# A write whose answer was lost (timeout, 5xx) may still be applied by HubSpot later: the record's next write
# waits this long, so that late write can't land over a newer one.
HUBSPOT_PUSH_GHOST_WINDOW_S = float(env("HUBSPOT_PUSH_GHOST_WINDOW_S", "60"))
# Between attempts of a change HubSpot could not take yet (after the client's own retries): doubling from the
# base, jittered, up to the cap.
HUBSPOT_PUSH_RETRY_BASE_S = float(env("HUBSPOT_PUSH_RETRY_BASE_S", "2"))
HUBSPOT_PUSH_RETRY_CAP_S = float(env("HUBSPOT_PUSH_RETRY_CAP_S", "300"))
# Claims a push task sends at once while full batches are due (itself and up to this many minus one threads):
# one sender waits out each call's round trip, so alone it stays under the rate limit; the shared limiter
# paces them all. UNCONFIRMED best value: 2 kept pace with the 190-per-10-s limiter against the sandbox
# (`benchmark pipelines`); with HubSpot's real round trips (assumed 150 ms a call) 3 or 4 may be needed.
HUBSPOT_PUSH_SENDERS = env_int("HUBSPOT_PUSH_SENDERS", 2)
# One push task works this long at most, then hands over to a fresh one.
HUBSPOT_PUSH_DRAIN_BUDGET_S = float(env("HUBSPOT_PUSH_DRAIN_BUDGET_S", "60"))
# A queued push task that has not started after this long is taken for lost; the next edit queues another.
HUBSPOT_PUSH_QUEUE_STALE_S = float(env("HUBSPOT_PUSH_QUEUE_STALE_S", "10"))
# How often beat sweeps the outbox for changes whose worker died and pushes whose task was lost.
HUBSPOT_PUSH_SWEEP_S = float(env("HUBSPOT_PUSH_SWEEP_S", "15"))
# Processed webhook events are kept this many days (the drawer's timeline and the Sync page show them), then
# deleted by a daily task; unprocessed ones are kept whatever their age.
HUBSPOT_WEBHOOK_RETENTION_DAYS = env_int("HUBSPOT_WEBHOOK_RETENTION_DAYS", 30)

# --- Pipeline editor: HubSpot's rules, checked before anything is sent -----------------------------------
# "order ... pipelines can have up to 30 stages" (https://developers.hubspot.com/docs/api/crm/pipelines).
HUBSPOT_PIPELINE_STAGE_CAP = env_int("HUBSPOT_PIPELINE_STAGE_CAP", 30)
# How many order pipelines an account may have: no source gives a figure (UNCONFIRMED), so 0: no cap.
HUBSPOT_PIPELINE_CAP = env_int("HUBSPOT_PIPELINE_CAP", 0)
# HubSpot's legacy pipelines API says "The label is limited to 36 characters"
# (https://developers.hubspot.com/docs/methods/pipelines/create_new_pipeline); UNCONFIRMED that v3 keeps it.
HUBSPOT_PIPELINE_LABEL_MAX = env_int("HUBSPOT_PIPELINE_LABEL_MAX", 36)
# No source gives a stage label's limit (UNCONFIRMED): a generous one, HubSpot's refusal shows if it is lower.
HUBSPOT_STAGE_LABEL_MAX = env_int("HUBSPOT_STAGE_LABEL_MAX", 100)
# Stage labels "must be unique" within a pipeline, and pipeline labels among a type's pipelines; whether
# HubSpot compares them ignoring case is UNCONFIRMED (the sandbox does, so "Paid" and "paid" clash).
HUBSPOT_PIPELINE_LABELS_IGNORE_CASE = env_bool("HUBSPOT_PIPELINE_LABELS_IGNORE_CASE", True)
# Deleting a stage (or archiving a pipeline) moves this many of its orders in the request itself; the rest
# move in a worker, this many per transaction (short ones: on SQLite the push claims and settles the first
# moves between them; 500 a transaction held it off for seconds), and the delete waits for them (renewed
# every chunk, this lease tells a stalled worker from a busy one).
PIPELINE_DELETE_MOVES_NOW = env_int("PIPELINE_DELETE_MOVES_NOW", 500)
PIPELINE_DELETE_MOVE_CHUNK = env_int("PIPELINE_DELETE_MOVE_CHUNK", 100)
PIPELINE_DELETE_MOVING_LEASE_S = env_int("PIPELINE_DELETE_MOVING_LEASE_S", 60)
# On SQLite the worker pauses this long between chunks. A push waiting for the write lock sleeps in SQLite's
# busy handler, 25 to 50 ms a try once it has waited a little (sqliteDefaultBusyCallback), so a shorter pause
# was mostly over before it looked again: with 20 ms the push kept about 80 % of its pace while moves were
# written, with 50 ms all of it (`benchmark pipelines`: 1.09-1.17x the rate-limit bound against 1.08-1.09x),
# and the worker still writes a chunk of 100 ahead of the push's 100 per batch.
PIPELINE_DELETE_SQLITE_PAUSE_S = float(env("PIPELINE_DELETE_SQLITE_PAUSE_S", "0.05"))

# --- Celery ----------------------------------------------------------------------------------------------
# Production: redis://host:6379/0. Default: kombu's filesystem transport in the data folder, which works
# across processes on one machine and needs no server. Durability of pushes and syncs does not rest on the
# broker (the outbox and sync cursors do), since neither transport redelivers a task whose worker died.
_BROKER_DIR = DATA_DIR / "broker"
CELERY_BROKER_URL = env("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    for _folder in ("queue", "control"):
        (_BROKER_DIR / _folder).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, Any] = {
        "data_folder_in": str(_BROKER_DIR / "queue"),
        "data_folder_out": str(_BROKER_DIR / "queue"),
        "store_processed": False,
        "control_folder": str(_BROKER_DIR / "control"),
        # kombu polls the folder; 1 s by default is too slow for a board that should settle in a second.
        "polling_interval": 0.1,
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_DEFAULT_QUEUE = env("ORDERDECK_QUEUE", "orderdeck")
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE: dict[str, dict[str, Any]] = {
    # Every 30 s: the worker writes its heartbeat, so pages can say when no worker is running.
    "worker-heartbeat": {"task": "hubspot_sync.tasks.worker_heartbeat_task", "schedule": 30.0},
    # Every minute (HUBSPOT_SYNC_INTERVAL_S): HubSpot's changes since the last run, by search.
    "sync-incremental": {
        "task": "hubspot_sync.tasks.sync_incremental_task",
        "schedule": float(HUBSPOT_SYNC_INTERVAL_S),
    },
    # Every minute: the recovery sequence's due steps are requested; recovery properties go to the outbox.
    "carts-sequence-tick": {"task": "carts.tasks.recovery_sequence_tick_task", "schedule": 60.0},
    "carts-writeback": {"task": "carts.tasks.recovery_writeback_task", "schedule": 60.0},
    # Nightly: a full read that also finds deletions and association changes that search can't see.
    "sync-reconcile": {
        "task": "hubspot_sync.tasks.sync_reconcile_task",
        "schedule": crontab(hour=2, minute=30),
    },
    # Every five minutes: webhook events whose refresh task was lost (a worker died) are picked up again.
    "webhook-sweep": {"task": "hubspot_sync.tasks.process_webhook_events_task", "schedule": 300.0},
    # Every 15 s (HUBSPOT_PUSH_SWEEP_S): changes stuck in "pushing" by a dead worker are sent again, and a
    # push task is queued while changes are pending (neither broker redelivers a task whose worker died).
    "push-sweep": {"task": "hubspot_sync.tasks.push_sweep_task", "schedule": HUBSPOT_PUSH_SWEEP_S},
    # Daily: drop processed webhook events older than HUBSPOT_WEBHOOK_RETENTION_DAYS.
    "prune-webhook-events": {
        "task": "hubspot_sync.tasks.prune_webhook_events_task",
        "schedule": crontab(hour=3, minute=41),
    },
    # Every minute: recovery emails whose task was lost (a worker or broker restart) are queued again, and
    # ones left "sending" by a dead worker are marked uncertain (never sent again automatically).
    "carts-send-resume": {"task": "carts.tasks.bulk_send_resume_task", "schedule": 60.0},
    # Daily: recovery send logs and clicks older than CARTS_RETENTION_DAYS go; old suppression reasons too.
    "carts-retention": {"task": "carts.privacy.retention_task", "schedule": crontab(hour=4, minute=7)},
    # Nightly: drop heartbeats older than a day.
    "prune-heartbeats": {
        "task": "hubspot_sync.tasks.prune_heartbeats_task",
        "schedule": crontab(hour=3, minute=17),
    },
}
# A worker is taken for dead when its last heartbeat is older than this.
WORKER_HEARTBEAT_STALE_S = env_int("WORKER_HEARTBEAT_STALE_S", 120)

# --- logging ---------------------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact_secrets": {"()": "hubspot_sync.logging.RedactSecrets"}},
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["redact_secrets"]}
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
