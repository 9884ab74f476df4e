"""The plugin framework: the Django-free SDK in ``imbi_plugin_sdk``, and the host around it
(models, registry, resolution, API, admin). Importing this package imports no Django."""
