"""App config for the core domain."""

from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "imbi.core"
    label = "core"
    verbose_name = "Imbi"

    def ready(self) -> None:
        # The admin autodiscovered every app's admin module before this runs (django.contrib
        # .admin comes first in INSTALLED_APPS): anything not scoped to an organization,
        # Django's and third-party apps' admins included, becomes superuser-only.
        from django.contrib import admin

        from . import checks  # noqa: F401  (registers the check)
        from .admin_scoping import lock_down

        lock_down(admin.site)
