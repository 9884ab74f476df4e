"""The supply chain: where plugins come from, and why the platform believes them.

Owns following signed indexes (``index``), trust roots, blocklists and the kill switch
(``trust``), signatures and certificates (``signing``), verifying an artifact against its
signed entry (``verification``), pinned dependencies (``dependencies``), installing from an
index (``install``), the errors with their stable codes (``errors``) and the admin pages of
indexes and install records (``admin``).

Installing hands a verified wheel to ``plugins_core.distributions``. May import
``distributions``, ``serving``, ``registry``, ``isolation`` and ``models``.
"""
