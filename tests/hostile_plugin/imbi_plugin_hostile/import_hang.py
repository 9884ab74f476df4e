"""Sleeps at import: the registry must record it ``import_failed`` and serve the rest."""

from __future__ import annotations

import time

from .behaviours import Base, _manifest

time.sleep(30)


class ImportHang(Base):
    manifest = _manifest("hostile-import-hang")
