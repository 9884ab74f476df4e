"""Root conftest: shared fixtures live in tests/conftest.py; this file only anchors rootdir."""
