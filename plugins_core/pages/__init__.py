"""The HTML pages: the operator's admin, the install wizard, the catalog and the project pages.

Owns the Django admin classes (``admin``), the "Install a plugin" wizard (``wizard``), the
forms they share (``forms``), the catalog cards (``catalog``) and the project owner's pages
(``views``: projects, tabs, bindings) and the operator's plugin pages outside the
admin's model pages (``plugins``: registry, enable/disable, connection tests, catalog).

Views stay thin: they parse, authorize, call a function of ``provisioning``, ``supply``,
``distributions`` or ``serving`` and render. May import every lower layer; nothing below
imports the pages (the API does not either).
"""
