"""The forms of the pages: forms generated from plugin manifests, and the small forms of the
install wizard and the project page.

Owns, one module each:

* ``fields``: what every generated form shares (``stored_status``, ``CLEAR_PREFIX``,
  ``SafeJSONField``);
* ``options``: a manifest's options (and a template's settings) as fields, ``OptionsForm``;
* ``credentials``: a service's write-only credentials as fields, ``CredentialsForm``;
* ``services``: the wizard's plugin and service steps (``PickPluginForm``, ``ServiceForm``);
* ``bindings``: binding and search-template forms (wizard, project page).

Secrets are write-only everywhere: a credential (secret or not) and a secret option are never
put back into a form, a widget or a help text. The form only learns *which* names are stored
and says "set" / "not set"; a blank field keeps the stored value and a "remove" box clears it.

Exposes every public name of its modules (below), so ``from plugins_core.pages.forms import
X`` keeps working. Used by ``pages.admin``, ``pages.wizard`` and ``pages.views``; may import
``provisioning`` (credential rules), ``serving`` (template checks), ``models`` and
``imbi.core.models``, never another page module.
"""

from __future__ import annotations

from plugins_core.pages.forms.bindings import (
    TEMPLATE_HELP,
    AddBindingForm,
    BindingForm,
    ConnectionTestForm,
    SiblingBindingForm,
    TypeBindingForm,
    offer_replace_default,
)
from plugins_core.pages.forms.credentials import (
    CredentialsForm,
    SecretTextarea,
    apply_credentials,
    collect_credentials,
    credential_fields_for,
    credential_form_fields,
    credential_rule_errors,
)
from plugins_core.pages.forms.fields import CLEAR_PREFIX, KEEP_HELP, SafeJSONField, stored_status
from plugins_core.pages.forms.options import (
    OptionsForm,
    add_setting_errors,
    collect_options,
    option_fields,
    setting_form_fields,
)
from plugins_core.pages.forms.services import PickPluginForm, ServiceForm, setting_names

__all__ = [
    "CLEAR_PREFIX",
    "KEEP_HELP",
    "TEMPLATE_HELP",
    "AddBindingForm",
    "BindingForm",
    "ConnectionTestForm",
    "CredentialsForm",
    "OptionsForm",
    "PickPluginForm",
    "SafeJSONField",
    "SecretTextarea",
    "ServiceForm",
    "SiblingBindingForm",
    "TypeBindingForm",
    "add_setting_errors",
    "apply_credentials",
    "collect_credentials",
    "collect_options",
    "credential_fields_for",
    "credential_form_fields",
    "credential_rule_errors",
    "offer_replace_default",
    "option_fields",
    "setting_form_fields",
    "setting_names",
    "stored_status",
]
