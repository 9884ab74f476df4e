"""What operators and project owners write: the service functions every surface calls.

Owns installing a plugin from its manifest template (``install``), third-party services and
their shared credentials (``services``; which credential fields a service has and how
changes merge: ``credentials``), project-type and project bindings (``bindings``),
enabling and disabling a plugin (``lifecycle``), plugin icons (``icons``) and the demo data
(``demo``). Each write validates, saves in one transaction and records the audit event, so
the admin, the wizard, the REST API and the CLI behave alike.

Called by ``pages``, ``api`` and the management commands. May import ``supply``,
``distributions``, ``serving``, ``registry``, ``isolation`` and ``models``.
"""
