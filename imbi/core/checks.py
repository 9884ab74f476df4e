"""System check: every model the admin shows is organization-scoped or superuser-only.

``CoreConfig.ready`` wraps the admins registered by then (``admin_scoping.lock_down``); an
admin registered later (from another app's ``ready``) would escape it, and this check turns
that into an error at start-up and in ``manage.py check``.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.core import checks

from .admin_scoping import is_scoped


@checks.register("security")
def check_admin_scoped(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    return [
        checks.Error(
            f"the admin of {model._meta.label} ({type(model_admin).__name__}) is neither "
            "organization-scoped nor superuser-only",
            hint="Subclass imbi.core.admin_scoping.OrgScopedAdmin, or SuperuserOnlyAdmin.",
            id="imbi.E001",
        )
        for model, model_admin in admin.site._registry.items()
        if not is_scoped(model_admin)
    ]
