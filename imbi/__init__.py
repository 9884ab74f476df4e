"""The Imbi integrations platform: Django project, settings and the core domain.

``imbi.celery`` is imported lazily by Django's app loading (see ``imbi.core.apps``)
so that importing this package stays cheap.
"""
