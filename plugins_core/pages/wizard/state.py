"""The install wizard's state store: one install in progress, kept in the session.

Owns the session keys (``SESSION_KEY``: the installs in progress by random id, at most
``MAX_PIPELINES`` of them, the oldest abandoned one forgotten first; ``DONE_KEY``: what the
finished ones wrote, for the done page), the shape of one install's state (``State``,
JSON-safe), ``manifest_signature`` (exactly what the install was started for) and
``InstallState``: start, load, save, discard, and typed access to what was chosen so far.

Credentials and options are kept *encrypted* (``imbi.core.crypto``), are never rendered back
into a form and go with the state when the wizard finishes or is cancelled. The connection
test's result is kept with the ``revision`` of the inputs it was run with; a change to them
makes it stale.

Writes no table; reads ``Organization`` only.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Mapping
from typing import Any, Literal, NotRequired, Self, TypedDict

from django.http import Http404, HttpRequest

from imbi.core import crypto
from imbi.core.models import Organization
from plugins_core import registry

SESSION_KEY = "plugins_core.install_wizard"
DONE_KEY = "plugins_core.install_done"
MAX_PIPELINES = 5


class State(TypedDict):
    """One install in progress, as stored in the session (JSON-safe)."""

    serial: int
    """Order of creation: the lowest is forgotten first when there are too many."""
    entry_point: str
    signature: str
    """``manifest_signature`` of the entry when the wizard started."""
    version: str
    organization_id: int
    done: list[str]
    """The names of the completed steps."""
    revision: int
    """Bumped whenever an input of the connection test changes."""
    service: dict[str, Any] | None
    """mode, service_id, new (name, vendor, slug), settings."""
    credentials: str | None
    """Encrypted: the credential changes (name → value, or None to remove)."""
    options: str | None
    """Encrypted: the option values."""
    connection: dict[str, Any] | None
    """The last connection test: ok, message, details, duration_ms, revision."""
    binding: dict[str, Any] | None
    """project_type_ids, default, search_template, sample_project_id."""
    test_with: NotRequired[dict[str, Any]]
    """The sample project and search template of the last connection test."""


def manifest_signature(entry: registry.Entry) -> str:
    """Identifies exactly what the wizard was started for; any change shows as a new value."""
    payload = {
        "name": entry.name,
        "target": entry.target,
        "distribution": entry.distribution,
        "version": entry.version,
        "status": entry.status.value,
        "manifest": entry.manifest.to_dict() if entry.manifest else None,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


class InstallState:
    """One install in progress: a JSON-safe dict in the session, addressed by ``id``."""

    def __init__(self, request: HttpRequest, pid: str, state: State) -> None:
        self.request = request
        self.id = pid
        self.state = state

    # -- lifecycle --

    @classmethod
    def _store(cls, request: HttpRequest) -> dict[str, State]:
        store: dict[str, State] = request.session.setdefault(SESSION_KEY, {})
        return store

    @classmethod
    def start(cls, request: HttpRequest, entry: registry.Entry, organization: Organization) -> Self:
        """A new install of ``entry`` in ``organization``."""
        store = cls._store(request)
        while len(store) >= MAX_PIPELINES:  # forget the oldest abandoned installs
            store.pop(min(store, key=lambda k: store[k].get("serial", 0)))
        serial = max((s.get("serial", 0) for s in store.values()), default=0) + 1
        pid = secrets.token_urlsafe(12)
        store[pid] = {
            "serial": serial,
            "entry_point": entry.name,
            "signature": manifest_signature(entry),
            "version": entry.version,
            "organization_id": organization.pk,
            "done": ["plugin"],
            "revision": 0,
            "service": None,
            "credentials": None,
            "options": None,
            "connection": None,
            "binding": None,
        }
        request.session.modified = True
        return cls(request, pid, store[pid])

    @classmethod
    def load(cls, request: HttpRequest, pid: str) -> Self | None:
        """The install ``pid`` of this session, or None (finished, abandoned, unknown)."""
        state = cls._store(request).get(pid)
        return cls(request, pid, state) if state is not None else None

    def save(self) -> None:
        self._store(self.request)[self.id] = self.state
        self.request.session.modified = True

    def discard(self) -> None:
        self._store(self.request).pop(self.id, None)
        self.request.session.modified = True

    # -- what was chosen --

    @property
    def entry_point(self) -> str:
        return str(self.state["entry_point"])

    def organization(self) -> Organization:
        org = Organization.objects.filter(pk=self.state["organization_id"]).first()
        if org is None:
            raise Http404("The organization no longer exists.")
        return org

    def completed(self, step: str) -> bool:
        return step in self.state["done"]

    def mark_done(self, step: str) -> None:
        if step not in self.state["done"]:
            self.state["done"].append(step)

    def changed(self) -> None:
        """Inputs the connection test depends on changed: its result is stale."""
        self.state["revision"] = int(self.state["revision"]) + 1

    @property
    def service_choice(self) -> dict[str, Any]:
        return dict(self.state["service"] or {})

    def connection(self) -> dict[str, Any] | None:
        """The last connection test, unless an input changed since it ran."""
        tested = self.state.get("connection")
        if not tested or tested.get("revision") != self.state["revision"]:
            return None
        return dict(tested)

    # -- secrets, encrypted in the session --

    def _secret(self, name: Literal["credentials", "options"]) -> Any:
        token = self.state.get(name)
        return crypto.decrypt_json(token, where=f"install wizard {name}") if token else None

    def credential_changes(self) -> dict[str, str | None]:
        return dict(self._secret("credentials") or {})

    def set_credential_changes(self, changes: Mapping[str, str | None]) -> None:
        self.state["credentials"] = crypto.encrypt_json(dict(changes))

    def options(self) -> dict[str, object]:
        return dict(self._secret("options") or {})

    def set_options(self, options: Mapping[str, object]) -> None:
        self.state["options"] = crypto.encrypt_json(dict(options))
