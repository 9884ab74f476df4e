"""The plugin framework: the Django-free SDK in ``plugins_core.sdk``, and the host around it
(models, registry, resolution, API, admin). Importing this package imports no Django."""
