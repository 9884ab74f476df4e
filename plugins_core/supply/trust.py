"""Publishers and trust: certificates, revocation, the verified-only policy, the blocklist.

Owns:
- ``Certificate`` and ``publisher_certificate`` (the index's certificate for a publisher,
  checked against the index's root keys), ``check_signing_time`` (valid at the moment the
  index's own signed timestamp says the entry was filed, i.e. ``valid_from <= indexed_at <=
  valid_until``: never the publisher's claimed ``signed_at``), ``check_not_revoked``;
- ``badge`` ("verified" or "community") and ``verified_only`` (instance setting
  ``IMBI_PLUGINS_VERIFIED_ONLY`` or an organization's ``PluginPolicy``), ``check_policy``;
- ``BlockRule`` and ``blocked`` (plugin + lowest good version, from every followed index and
  the ``IMBI_PLUGINS_BLOCKLIST`` setting), honored at install and at load: defined in
  ``plugins_core.distributions.blocklist`` (integrity applies them at load), re-exported here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from imbi_plugin_sdk import signing as formats
from packaging.utils import canonicalize_name

from plugins_core.distributions.blocklist import BlockRule, block_rules, blocked
from plugins_core.supply.errors import (
    CertificateExpired,
    CertificateInvalid,
    CertificateNotYetValid,
    CertificateRevoked,
    PublisherNotVerified,
    PublisherUnknown,
    VersionBlocked,
)
from plugins_core.supply.signing import TrustRoot, signed_by

__all__ = [
    "BlockRule",
    "Certificate",
    "badge",
    "badge_of",
    "block_rules",
    "blocked",
    "check_not_revoked",
    "check_policy",
    "check_signing_time",
    "installed_badges",
    "publisher_certificate",
    "verified_only",
]

VERIFIED = "verified"
COMMUNITY = "community"


@dataclass(frozen=True, slots=True)
class Certificate:
    """A publisher's key, certified by an index's root key for a window of time."""

    serial: str
    subject: str
    public_key: str
    key_id: str
    valid_from: dt.datetime
    valid_until: dt.datetime
    verified: bool
    issuer: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "serial": self.serial,
            "subject": self.subject,
            "key_id": self.key_id,
            "valid_from": formats.format_time(self.valid_from),
            "valid_until": formats.format_time(self.valid_until),
            "verified": self.verified,
            "issuer": self.issuer,
        }


def _parse_certificate(document: Any, publisher: str) -> Certificate:
    try:
        body = document["certificate"]
        certificate = Certificate(
            serial=str(body["serial"]),
            subject=str(body["subject"]),
            public_key=str(body["public_key"]),
            key_id=formats.key_id(str(body["public_key"])),
            valid_from=formats.parse_time(body["valid_from"]),
            valid_until=formats.parse_time(body["valid_until"]),
            verified=body["verified"] is True,
            issuer=str(body["issuer"]),
        )
    except (KeyError, TypeError, ValueError):
        raise CertificateInvalid(
            f"the certificate of publisher {publisher!r} is malformed", publisher=publisher
        ) from None
    if certificate.subject != publisher:
        raise CertificateInvalid(
            f"the certificate filed under {publisher!r} is issued to {certificate.subject!r}",
            publisher=publisher,
        )
    return certificate


def publisher_certificate(
    publishers: Mapping[str, Any], publisher: str, root: TrustRoot
) -> Certificate:
    """The certificate for ``publisher``, signed by one of ``root``'s root keys."""
    document = publishers.get(publisher)
    if document is None:
        raise PublisherUnknown(
            f"publisher {publisher!r} has no certificate in the index", publisher=publisher
        )
    certificate = _parse_certificate(document, publisher)
    body = document["certificate"]
    signer, ok = signed_by(
        root.root_key_ids(),
        formats.certificate_message(body),
        [{"key_id": body.get("issuer"), "signature": document.get("signature")}],
    )
    if not ok:
        why = "was altered" if signer else "is not issued by a root key this platform trusts"
        raise CertificateInvalid(
            f"the certificate of publisher {publisher!r} {why}", publisher=publisher
        )
    return certificate


def check_signing_time(certificate: Certificate, signed_at: dt.datetime) -> None:
    """The certificate must be valid at ``signed_at``: the index's signed time for the entry
    (``indexed_at``), which the publisher cannot choose."""
    when = formats.format_time(signed_at)
    if signed_at < certificate.valid_from:
        raise CertificateNotYetValid(
            f"publisher {certificate.subject!r}'s entry was filed at {when}, before its "
            f"certificate became valid ({formats.format_time(certificate.valid_from)})",
            publisher=certificate.subject,
        )
    if signed_at > certificate.valid_until:
        raise CertificateExpired(
            f"publisher {certificate.subject!r}'s entry was filed at {when}, after its "
            f"certificate expired ({formats.format_time(certificate.valid_until)})",
            publisher=certificate.subject,
        )


def check_not_revoked(certificate: Certificate, revoked: Iterable[Mapping[str, Any]]) -> None:
    """A revoked certificate (by serial or key id) signs nothing, whenever it signed."""
    for item in revoked:
        if item.get("serial") in (certificate.serial, certificate.key_id):
            reason = str(item.get("reason") or "no reason given")
            raise CertificateRevoked(
                f"the certificate of publisher {certificate.subject!r} "
                f"(serial {certificate.serial}) is revoked: {reason}",
                publisher=certificate.subject,
            )


def badge(certificate: Certificate | None) -> str:
    """What the catalog, the wizard and the API show next to a plugin."""
    return VERIFIED if certificate is not None and certificate.verified else COMMUNITY


UNSIGNED = "unsigned"
# Shipped with the platform (``plugins_core.registry.FIRST_PARTY``): not from an index, so
# unsigned, but not a stranger's code either.
FIRST_PARTY = "first-party"


def installed_badges() -> dict[str, str]:
    """Distribution -> badge for everything installed from an index (one query)."""
    from plugins_core.models import IndexedArtifact

    return {
        name: VERIFIED if verified else COMMUNITY
        for name, verified in IndexedArtifact.objects.values_list(
            "distribution", "verified_publisher"
        )
    }


def badge_of(distribution: str, badges: Mapping[str, str]) -> str:
    """A loaded distribution's badge: its index's when installed from one, ``first-party``
    for the platform's own catalog, otherwise ``unsigned``."""
    if not distribution:
        return UNSIGNED
    name = canonicalize_name(distribution)
    if name in badges:
        return badges[name]
    from plugins_core.registry import FIRST_PARTY as SHIPPED

    return FIRST_PARTY if name in SHIPPED else UNSIGNED


def verified_only(organization: Any = None) -> bool:
    """The policy in force: the instance setting, or the organization's own, if stricter."""
    from django.conf import settings

    if getattr(settings, "IMBI_PLUGINS_VERIFIED_ONLY", False):
        return True
    if organization is None:
        return False
    from plugins_core.models import PluginPolicy

    return PluginPolicy.objects.filter(
        organization=organization, verified_publishers_only=True
    ).exists()


def check_policy(certificate: Certificate, *, verified_only: bool) -> None:
    if verified_only and not certificate.verified:
        raise PublisherNotVerified(
            f"publisher {certificate.subject!r} is not a verified publisher, and this "
            "platform installs plugins from verified publishers only",
            publisher=certificate.subject,
        )


# --- the blocklist ------------------------------------------------------------------------


def check_blocklist(rules: Iterable[BlockRule], name: str, version: str) -> None:
    rule = blocked(rules, name, version)
    if rule is not None:
        raise VersionBlocked(
            rule.message(name, version), plugin=name, version=version, lowest_good=rule.below
        )
