"""Hostile plugins: each entry point attacks the host one way (see tests/plugins_core/isolation)."""
