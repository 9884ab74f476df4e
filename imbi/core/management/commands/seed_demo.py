"""Seed the demo organization (project types, projects, members) and an admin login.

Idempotent: a second run changes nothing and never prints a password again. The admin's
password is random and printed once, when the account is created.
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


class Command(BaseCommand):
    help = "Create the demo organization, project types, projects and an admin login."

    def handle(self, *args: Any, **options: Any) -> None:
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
            self._ensure_members(org)
        from plugins_core.demo import seed_plugins

        seed_plugins(org, stdout=self.stdout)
        if password:
            self.stdout.write(
                self.style.SUCCESS(
                    "Admin login (shown once): username 'admin' password "
                    f"'{password}'  ->  http://127.0.0.1:8000/admin/"
                )
            )
        else:
            self.stdout.write("Demo data present; admin login already created earlier.")

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

    def _ensure_members(self, org: Organization) -> None:
        users = get_user_model()
        for username, role, secrets_ok in DEMO_USERS:
            user, created = users.objects.get_or_create(username=username)
            if created:
                user.set_unusable_password()
                user.save()
            Membership.objects.get_or_create(
                user=user,
                organization=org,
                defaults={"role": role, "can_read_secrets": secrets_ok},
            )
            if role == Role.OWNER:
                for project in Project.objects.filter(organization=org, slug="billing-api"):
                    project.owners.add(user)
