"""Seed the demo organization (project types, projects, members) and two logins.

Idempotent: a second run changes nothing and never prints a password again. The logins are
the superuser ``admin`` and the demo project owner ``owner`` (owner of billing-api); each
password is random and printed once, when the account is created. Reset one with
``manage.py changepassword admin`` (or ``owner``), or delete ``data/`` for a fresh demo.
"""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from imbi.core.models import Membership, Organization, Project, ProjectType, Role

PROJECT_TYPES = [
    ("api", "HTTP API", ["billing-api", "accounts-api"]),
    ("consumer", "Queue consumer", ["mailer"]),
    ("frontend", "Web frontend", ["storefront"]),
]

DEMO_USERS = [
    ("owner", Role.OWNER, False),
    ("viewer", Role.VIEWER, False),
]
LOGIN_USERS = ("owner",)  # demo members who get a password (the others cannot log in)
RESET = ".venv/bin/python manage.py changepassword"


class Command(BaseCommand):
    help = "Create the demo organization, project types, projects and two logins."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--url", default="http://127.0.0.1:8000/", help="Where the server will listen."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        url = options["url"].rstrip("/") + "/"
        with transaction.atomic():
            org, _ = Organization.objects.get_or_create(
                slug="demo", defaults={"name": "Demo Organization"}
            )
            for type_slug, type_name, projects in PROJECT_TYPES:
                ptype, _ = ProjectType.objects.get_or_create(
                    organization=org, slug=type_slug, defaults={"name": type_name}
                )
                for slug in projects:
                    Project.objects.get_or_create(
                        organization=org,
                        slug=slug,
                        defaults={"project_type": ptype, "name": slug.replace("-", " ").title()},
                    )
            password = self._ensure_admin(org)
            passwords = self._ensure_members(org)
        from plugins_core.provisioning.demo import seed_plugins

        seed_plugins(org, stdout=self.stdout)
        self.stdout.write(self.style.SUCCESS(f"Imbi is at {url}"))
        logins = [("admin", password, f"{url}admin/", "superuser")]
        logins += [(name, pw, f"{url}projects/", "owner of billing-api") for name, pw in passwords]
        for username, secret, where, what in logins:
            if secret:
                self.stdout.write(
                    self.style.SUCCESS(
                        f"Login ({what}, shown once): username '{username}' password "
                        f"'{secret}'  ->  {where}"
                    )
                )
            else:
                self.stdout.write(
                    f"Login ({what}): username '{username}' (set earlier; reset: "
                    f"{RESET} {username})  ->  {where}"
                )

    def _ensure_admin(self, org: Organization) -> str | None:
        users = get_user_model()
        if users.objects.filter(username="admin").exists():
            return None
        password = secrets.token_urlsafe(12)
        admin = users.objects.create_superuser("admin", "admin@example.com", password)
        Membership.objects.create(
            user=admin, organization=org, role=Role.ADMIN, can_read_secrets=True
        )
        return password

    def _ensure_members(self, org: Organization) -> list[tuple[str, str | None]]:
        """The demo members; returns (username, password or None) for each login user."""
        users = get_user_model()
        passwords: list[tuple[str, str | None]] = []
        for username, role, secrets_ok in DEMO_USERS:
            user, created = users.objects.get_or_create(username=username)
            password = None
            if created and username in LOGIN_USERS:
                password = secrets.token_urlsafe(12)
                user.set_password(password)
                user.save()
            elif created:
                user.set_unusable_password()
                user.save()
            if username in LOGIN_USERS:
                passwords.append((username, password))
            Membership.objects.get_or_create(
                user=user,
                organization=org,
                defaults={"role": role, "can_read_secrets": secrets_ok},
            )
            if role == Role.OWNER:
                for project in Project.objects.filter(organization=org, slug="billing-api"):
                    project.owners.add(user)
        return passwords
