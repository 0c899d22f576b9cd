"""Creates N residents with verified emails: resident{i}@example.org, one password."""
from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create benchmark residents (verified emails, one shared password)."

    def add_arguments(self, parser):
        parser.add_argument("count", type=int)
        parser.add_argument("password")

    def handle(self, count, password, **_):
        user_model = get_user_model()
        hashed = make_password(password)  # one argon2 hash, shared: seeding is not measured
        for i in range(count):
            email = f"resident{i}@example.org"
            user, _ = user_model.objects.get_or_create(
                username=f"resident{i}", defaults={"email": email, "password": hashed}
            )
            EmailAddress.objects.get_or_create(
                user=user, email=email, defaults={"verified": True, "primary": True}
            )
        self.stdout.write(f"seeded {count}")
