"""Supply-chain data: the indexes an instance follows, what they offered, and policy.

- ``PluginIndex``: a followed index (where it is, its root keys, how fresh it must be).
- ``IndexedArtifact``: an artifact an index offered and this instance verified/installed.
- ``PluginPolicy``: an organization's supply-chain policy (verified publishers only).

Written by ``plugins_core.supply``; read by the supply admin and the API.
"""

from __future__ import annotations

from typing import ClassVar

from django.core.exceptions import ValidationError
from django.db import models
from imbi_plugin_sdk import signing as formats

from imbi.core.models import Organization


def _valid_public_key(text: str) -> bool:
    """A base64 Ed25519 public key (``supply.signing.valid_public_key``, from the SDK)."""
    try:
        formats.key_id(text)
    except formats.KeyFileError:
        return False
    return True


def index_location_error(url: str) -> str:
    """Why ``url`` cannot locate an index ("" when it can): an http(s) URL with a host, or
    an absolute folder (or ``.json`` file) path on this node."""
    import os
    import urllib.parse

    text = url.strip()
    if not text or "\x00" in text or text != url:
        return "An http(s) URL or an absolute folder path, without surrounding spaces."
    parts = urllib.parse.urlsplit(text)
    if parts.scheme in ("http", "https"):
        return "" if parts.hostname else "The URL names no host."
    if parts.scheme and not os.path.isabs(text):
        return f"Only http(s) URLs or local folders are followed, not {parts.scheme}:."
    if not os.path.isabs(text):
        return "A local folder must be an absolute path."
    return ""


class PluginIndex(models.Model):
    """A signed plugin index this platform follows, with its own pinned trust root.

    ``index_keys`` may sign the index; ``root_keys`` certify its publishers (both base64
    Ed25519 public keys). ``last_version``/``last_digest`` are the newest index seen: an
    older one is a rollback. ``document`` is the last verified index (catalog, blocklist,
    name owners). ``rotation`` is the last root-signed key rotation applied.
    Lower ``priority`` wins when two indexes offer the same plugin name.
    """

    name = models.SlugField(max_length=64, unique=True)
    url = models.CharField(max_length=1000, help_text="An http(s) URL or a local folder.")
    index_keys = models.JSONField(default=list)
    root_keys = models.JSONField(default=list)
    priority = models.PositiveSmallIntegerField(default=100)
    enabled = models.BooleanField(default=True)
    last_version = models.PositiveBigIntegerField(default=0, editable=False)
    last_digest = models.CharField(max_length=64, blank=True, editable=False)
    expires = models.DateTimeField(null=True, blank=True, editable=False)
    document = models.JSONField(null=True, blank=True, editable=False)
    checked_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_error_code = models.CharField(max_length=64, blank=True, editable=False)
    last_error = models.TextField(blank=True, editable=False)
    rotation = models.JSONField(
        null=True,
        blank=True,
        editable=False,
        help_text="The last root-signed index-key rotation applied (manage.py plugin index "
        "rotate); an older one cannot be replayed.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering: ClassVar = ["priority", "name"]
        verbose_name = "plugin index"
        verbose_name_plural = "plugin indexes"

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors: dict[str, str] = {}
        for field in ("index_keys", "root_keys"):
            keys = getattr(self, field)
            if not isinstance(keys, list) or not keys:
                errors[field] = "List at least one base64 Ed25519 public key."
            elif not all(isinstance(k, str) and _valid_public_key(k) for k in keys):
                errors[field] = "Every key must be a base64 Ed25519 public key (32 bytes)."
        url_error = index_location_error(self.url or "")
        if url_error:
            errors["url"] = url_error
        if errors:
            raise ValidationError(errors)


class IndexedArtifact(models.Model):
    """Which verified artifact a distribution was installed from (every node installs these
    bytes): the index, the signed entry (hash, size, file manifest, publisher signature) and
    the publisher's certificate at install time."""

    distribution = models.CharField(max_length=200, unique=True)
    version = models.CharField(max_length=64)
    sha256 = models.CharField(max_length=64)
    size = models.PositiveBigIntegerField()
    index = models.CharField(max_length=64)
    index_version = models.PositiveBigIntegerField()
    publisher = models.CharField(max_length=200)
    verified_publisher = models.BooleanField(default=False)
    entry = models.JSONField()
    certificate = models.JSONField()
    installed_at = models.DateTimeField(auto_now=True)
    installed_by = models.CharField(max_length=150, blank=True)

    class Meta:
        ordering: ClassVar = ["distribution"]
        constraints: ClassVar = [
            models.CheckConstraint(
                condition=models.Q(sha256__regex=r"^[0-9a-f]{64}$"),
                name="indexedartifact_sha256_hex",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.distribution} {self.version} ({self.sha256[:12]})"

    @property
    def badge(self) -> str:
        return "verified" if self.verified_publisher else "community"


class PluginPolicy(models.Model):
    """An organization's supply-chain policy (the instance setting may be stricter)."""

    organization = models.OneToOneField(
        Organization, on_delete=models.CASCADE, related_name="plugin_policy"
    )
    verified_publishers_only = models.BooleanField(default=False)

    class Meta:
        verbose_name = "plugin policy"
        verbose_name_plural = "plugin policies"

    def __str__(self) -> str:
        return f"{self.organization}: verified only={self.verified_publishers_only}"
