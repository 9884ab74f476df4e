"""Desired state of runtime-installed plugin distributions, and what each node has.

- ``InstalledDistribution``: one row per distribution the platform should serve (name,
  version, the wheel's sha256 and size, where it came from, its execution mode, the entry
  points and manifests its sandboxed inspection reported, who installed it and when).
- ``DistributionArtifact``: the wheel files themselves (the plugin's and its dependencies'),
  keyed by sha256, so a node that was down fetches exactly what was installed.
- ``RegistryState``: the single row holding the global registry *generation*; every install,
  upgrade and remove increments it in the same transaction as its rows.
- ``NodeState``: what one node reported for one distribution (version, hash, status).

Written only by ``plugins_core.distributions.desired`` (desired state) and
``plugins_core.distributions.environments`` (node state).
"""

from __future__ import annotations

from typing import ClassVar

from django.conf import settings
from django.db import models


class InstalledDistribution(models.Model):
    name = models.CharField(max_length=200, unique=True, help_text="Normalized project name.")
    version = models.CharField(max_length=100)
    sha256 = models.CharField(max_length=64, help_text="sha256 of the plugin's wheel.")
    size = models.PositiveBigIntegerField()
    filename = models.CharField(max_length=300)
    source = models.CharField(max_length=500, help_text="The wheel or wheelhouse installed from.")
    execution_mode = models.CharField(max_length=16, default="isolated")
    artifacts = models.JSONField(default=list, help_text="sha256 of every wheel to install.")
    entries = models.JSONField(
        default=dict, help_text="Entry-point name -> {target, manifest} as inspected."
    )
    generation = models.BigIntegerField(help_text="Registry generation of the last change.")
    installed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    installed_by_name = models.CharField(max_length=150, default="system")
    installed_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering: ClassVar = ["name"]
        constraints: ClassVar = [
            models.CheckConstraint(
                condition=models.Q(execution_mode="isolated"),
                name="distribution_runtime_isolated",
            ),
            models.CheckConstraint(
                condition=models.Q(sha256__regex=r"^[0-9a-f]{64}$"),
                name="distribution_sha256_hex",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} {self.version}"

    @property
    def env_key(self) -> str:
        """The environment folder name on every node: one per (name, version, wheel hash)."""
        return f"{self.name}-{self.version}-{self.sha256[:12]}"


class DistributionArtifact(models.Model):
    sha256 = models.CharField(max_length=64, primary_key=True)
    filename = models.CharField(max_length=300)
    size = models.PositiveBigIntegerField()
    content = models.BinaryField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.filename


class RegistryState(models.Model):
    """The single row (pk 1) holding the global registry generation."""

    generation = models.BigIntegerField(default=0)
    changed_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints: ClassVar = [
            models.CheckConstraint(condition=models.Q(id=1), name="registry_state_single_row")
        ]

    def __str__(self) -> str:
        return f"registry generation {self.generation}"


class NodeStatus(models.TextChoices):
    READY = "ready", "ready"
    FAILED = "failed", "failed"
    RETIRED = "retired", "retired (draining)"


class NodeState(models.Model):
    node = models.CharField(max_length=200)
    distribution = models.CharField(max_length=200)
    version = models.CharField(max_length=100)
    sha256 = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=NodeStatus.choices)
    detail = models.CharField(max_length=500, blank=True)
    generation = models.BigIntegerField(default=0, help_text="Generation the node converged to.")
    seen_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering: ClassVar = ["node", "distribution"]
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["node", "distribution", "sha256"], name="node_state_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.node}: {self.distribution} {self.version} {self.status}"
