"""Execution modes: which runner serves an installed plugin.

``in_process``: the handler runs in the web or Celery worker (the first-party catalog and
distributions the operator lists in ``IMBI_TRUSTED_PLUGIN_DISTRIBUTIONS``). ``isolated``:
a sandboxed runner process (``supervisor``). An installed plugin's ``execution_mode`` is
``auto`` (in-process when its distribution is trusted, isolated otherwise), or an admin's
explicit choice. A distribution the operator does not trust is never imported by the host,
so it runs isolated whatever the row says.
"""

from __future__ import annotations

from typing import Any

AUTO, IN_PROCESS, ISOLATED = "auto", "in_process", "isolated"


def effective_mode(chosen: str, entry: Any) -> str:
    """``in_process`` or ``isolated`` for a plugin row's ``execution_mode`` and its entry."""
    if entry is None or entry.handler is None or getattr(entry, "isolated", False):
        return ISOLATED
    if chosen == ISOLATED:
        return ISOLATED
    return IN_PROCESS
