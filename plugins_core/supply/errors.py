"""Every supply-chain refusal: re-exported from ``plugins_core.distributions.errors``.

They are defined one layer down because ``distributions.integrity`` raises them too (the
import contract in pyproject.toml); import them from here or from there. The names are that
module's ``__all__``, so a new refusal is declared once.
"""

from plugins_core.distributions.errors import *  # noqa: F403  (the names of __all__ below)
from plugins_core.distributions.errors import __all__ as __all__
