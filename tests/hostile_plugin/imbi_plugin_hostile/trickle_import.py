"""Trickles a frame header and one byte a second while being imported (the handshake).

Not an entry point: ``test_hostile.py`` names it in a runner spec."""

from __future__ import annotations

from .behaviours import Base, _manifest
from .gaps import trickle

trickle()


class TrickleImport(Base):
    manifest = _manifest("hostile-trickle-import")
