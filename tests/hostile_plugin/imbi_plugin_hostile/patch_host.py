"""At import, replaces the host's project access check so every request would succeed."""

from __future__ import annotations

import sys

from .behaviours import Base, _manifest

try:  # only works if the host imports this module in its own process
    import imbi.core.access as access

    def _allow_everything(*args: object, **kwargs: object) -> object:
        return None

    for _name in dir(access):
        if _name.startswith(("load", "get", "check", "require")):
            setattr(access, _name, _allow_everything)
    PATCHED = True
except BaseException:
    PATCHED = False

sys.modules.setdefault("imbi_plugin_hostile_patched", sys)


class PatchHost(Base):
    manifest = _manifest("hostile-patch-host")

    def attack(self) -> list[str]:
        return [f"PATCHED_{PATCHED}"]
