"""The admin's "Install a plugin" wizard: a pipeline of steps sharing state in the session.

Owns one install in progress from the first step to the rows it writes. Steps: plugin →
service → credentials → options → test → bind → finish (summary, confirm). Nothing is written
before the last step; ``finish_install`` then, in ONE transaction, installs from the template
(or creates the service/plugin rows), saves credentials, options and project-type bindings
and writes the audit trail. A failure rolls everything back; abandoning the wizard leaves no
rows behind. Every step re-checks permission (``imbi.core.access.can_install``); a plugin
changed (upgraded, removed, broken) mid-flow is detected on the next request and the wizard
starts over; credentials and options are kept in the session encrypted and never rendered
back into a form.

Modules, one concept each:

- ``state``: the state store (``InstallState``, the session keys, ``manifest_signature``);
- ``pipeline``: the step machine (``STEPS``, ``Pipeline``, ``authorize``, ``StepBase``);
- ``choice`` (steps 1 and 2: plugin, service), ``credentials``, ``options``, ``connection``
  (``test_connection``), ``bind``, ``review`` (step 7): the steps;
- ``finish``: ``finish_install``, the only writer;
- ``views``: what ``plugins_core.pages.admin`` routes (``StepView``, ``CancelView``,
  ``DoneView``, ``PreviewView``; ``StartView`` is step 1's).

Exposes the views, ``Pipeline``, ``test_connection``, ``finish_install`` with
``InstallPlan``/``Finished``/``WizardError``, the steps (``STEPS``) and the session keys
(``SESSION_KEY``, ``DONE_KEY``). May import ``imbi.core``, the SDK, the rest of
``plugins_core.pages`` (``forms``, ``catalog``) and the layers below the pages
(``provisioning``, ``serving``, ``supply``, ``registry``, ``models``); nothing but
``plugins_core.pages.admin`` imports it.
"""

from __future__ import annotations

from plugins_core.pages.wizard.choice import StartView, catalog
from plugins_core.pages.wizard.connection import TEST_TIMEOUT, test_connection
from plugins_core.pages.wizard.finish import Finished, InstallPlan, WizardError, finish_install
from plugins_core.pages.wizard.pipeline import STEP_NAMES, STEPS, Pipeline, Step, authorize
from plugins_core.pages.wizard.state import (
    DONE_KEY,
    MAX_PIPELINES,
    SESSION_KEY,
    InstallState,
    State,
    manifest_signature,
)
from plugins_core.pages.wizard.views import CancelView, DoneView, PreviewView, StepView

__all__ = [
    "DONE_KEY",
    "MAX_PIPELINES",
    "SESSION_KEY",
    "STEPS",
    "STEP_NAMES",
    "TEST_TIMEOUT",
    "CancelView",
    "DoneView",
    "Finished",
    "InstallPlan",
    "InstallState",
    "Pipeline",
    "PreviewView",
    "StartView",
    "State",
    "Step",
    "StepView",
    "WizardError",
    "authorize",
    "catalog",
    "finish_install",
    "manifest_signature",
    "test_connection",
]
