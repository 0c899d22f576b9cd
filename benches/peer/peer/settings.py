"""django-allauth as the peer of the resident-auth benchmarks (benches/peer/run.sh).

A production-shaped configuration: DEBUG off, argon2id at resident-auth's parameters
(m = 19456 KiB, t = 2, p = 1), allauth's headless JSON API for an app client (session
tokens, like our bearer tokens), sessions in the database. Rate limits are off because
every request of the load driver comes from 127.0.0.1 (resident-auth is run behind a
trusted proxy address instead, each virtual user its own client).
"""
import os

from django.contrib.auth.hashers import Argon2PasswordHasher

SECRET_KEY = os.environ.get("PEER_SECRET_KEY", "benchmark-only-not-secret")
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "peer.urls"
USE_TZ = True

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "allauth",
    "allauth.account",
    "allauth.headless",
    "peer",
]

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "allauth.account.middleware.AccountMiddleware",
]

if os.environ.get("PEER_DATABASE") == "postgres":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": os.environ["PEER_PG_NAME"],
            "USER": os.environ.get("PEER_PG_USER", "postgres"),
            "HOST": os.environ.get("PEER_PG_HOST", "127.0.0.1"),
            "PORT": os.environ.get("PEER_PG_PORT", "5432"),
            "CONN_MAX_AGE": 60,
        }
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("PEER_SQLITE", "peer.sqlite3"),
            "OPTIONS": {"init_command": "PRAGMA journal_mode=WAL;", "timeout": 30},
        }
    }


class ResidentAuthArgon2(Argon2PasswordHasher):
    """argon2id (argon2-cffi, libargon2) at OWASP's minimum, as resident-auth uses."""

    time_cost = 2
    memory_cost = 19456
    parallelism = 1


PASSWORD_HASHERS = ["peer.settings.ResidentAuthArgon2"]

AUTHENTICATION_BACKENDS = ["allauth.account.auth_backends.AuthenticationBackend"]
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*"]
ACCOUNT_EMAIL_VERIFICATION = "none"
ACCOUNT_RATE_LIMITS = False
HEADLESS_ONLY = True
HEADLESS_CLIENTS = ("app",)
HEADLESS_FRONTEND_URLS = {
    "account_confirm_email": "http://127.0.0.1/confirm/{key}",
    "account_reset_password_from_key": "http://127.0.0.1/reset/{key}",
    "account_signup": "http://127.0.0.1/signup",
}
EMAIL_BACKEND = "django.core.mail.backends.dummy.EmailBackend"
LOGGING = {"version": 1, "disable_existing_loggers": True}
