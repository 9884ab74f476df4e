"""App config for the core domain."""

from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "imbi.core"
    label = "core"
    verbose_name = "Imbi"
