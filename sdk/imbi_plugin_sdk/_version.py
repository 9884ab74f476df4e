"""The distribution's version. MAJOR.MINOR is the plugin contract's ``SDK_API_VERSION``."""

__version__ = "1.3.0"
