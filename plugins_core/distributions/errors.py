"""Every supply-chain refusal, one class and one stable ``code`` each.

Raised by ``supply`` (``index``, ``trust``, ``verification``, ``install``) and by
``distributions.integrity``, so they live here, in the lower of the two layers;
``plugins_core.supply.errors`` re-exports every name. Shown as-is by the CLI
(``manage.py plugin install|verify``: one line, non-zero exit), the REST API (problem+json
with ``code``; ``imbi.api.problems`` maps any exception with ``code``/``http_status``/
``detail``) and the admin (the message next to the index or distribution). Messages name
files, versions, keys and digests, never secrets.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "ApiVersionUnsupported",
    "ArtifactHashMismatch",
    "ArtifactNotFound",
    "ArtifactSizeMismatch",
    "ArtifactTampered",
    "ArtifactUnreachable",
    "CertificateExpired",
    "CertificateInvalid",
    "CertificateNotYetValid",
    "CertificateRevoked",
    "DependencyRejected",
    "DependencyUnavailable",
    "DowngradeRefused",
    "FetchRefused",
    "FileModified",
    "IndexExpired",
    "IndexMalformed",
    "IndexNameMismatch",
    "IndexRollback",
    "IndexSignatureInvalid",
    "IndexUnreachable",
    "IndexUntrustedKey",
    "InstallFailed",
    "InvalidRequirement",
    "InvalidWheel",
    "NameNotOwned",
    "NoIndexConfigured",
    "PermissionsMismatch",
    "PublisherChanged",
    "PublisherNotVerified",
    "PublisherSignatureInvalid",
    "PublisherUnknown",
    "RotationInvalid",
    "SdkRangeUnsupported",
    "SupplyChainError",
    "UnsignedPlugin",
    "VersionBlocked",
    "VersionMismatch",
]


class SupplyChainError(Exception):
    """A refused index, artifact or installed distribution. ``code`` is stable."""

    code: ClassVar[str] = "supply_chain_refused"
    http_status: ClassVar[int] = 422

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = {k: v for k, v in extra.items() if v is not None}

    def __str__(self) -> str:
        return f"{self.code}: {self.detail}"


# --- the index ----------------------------------------------------------------------------


class NoIndexConfigured(SupplyChainError):
    code = "no_index_configured"
    http_status = 409


class IndexUnreachable(SupplyChainError):
    code = "index_unreachable"
    http_status = 502


class IndexMalformed(SupplyChainError):
    code = "index_malformed"


class IndexUntrustedKey(SupplyChainError):
    """No signature by a key of the index's trust root."""

    code = "index_untrusted_key"


class IndexSignatureInvalid(SupplyChainError):
    """A trusted key id, but the signature does not verify (the index was altered)."""

    code = "index_signature_invalid"


class IndexRollback(SupplyChainError):
    code = "index_rollback"


class IndexExpired(SupplyChainError):
    code = "index_expired"


# --- the artifact -------------------------------------------------------------------------


class InvalidRequirement(SupplyChainError):
    """Not ``NAME`` or ``NAME==VERSION`` (a specifier like ``>=``, a path, a blank version)."""

    code = "invalid_requirement"
    http_status = 400


class ArtifactNotFound(SupplyChainError):
    code = "artifact_not_found"
    http_status = 404


class ArtifactUnreachable(SupplyChainError):
    code = "artifact_unreachable"
    http_status = 502


class ArtifactSizeMismatch(SupplyChainError):
    code = "artifact_size_mismatch"


class ArtifactHashMismatch(SupplyChainError):
    code = "artifact_hash_mismatch"


class ArtifactTampered(SupplyChainError):
    """The bytes differ from the signed digest and a file inside differs from the signed
    file manifest: someone changed the wheel's content."""

    code = "artifact_tampered"


class ApiVersionUnsupported(SupplyChainError):
    code = "api_version_unsupported"


class SdkRangeUnsupported(SupplyChainError):
    code = "sdk_range_unsupported"


class VersionBlocked(SupplyChainError):
    code = "version_blocked"


# --- publishers ---------------------------------------------------------------------------


class PublisherUnknown(SupplyChainError):
    """No certificate for the entry's publisher in the index."""

    code = "publisher_unknown"


class PublisherNotVerified(SupplyChainError):
    """A community (unverified) publisher under a verified-publishers-only policy."""

    code = "publisher_not_verified"


class PublisherSignatureInvalid(SupplyChainError):
    code = "publisher_signature_invalid"


class CertificateInvalid(SupplyChainError):
    """A certificate not signed by the index's root key, or malformed."""

    code = "certificate_invalid"


class CertificateExpired(SupplyChainError):
    code = "certificate_expired"


class CertificateNotYetValid(SupplyChainError):
    code = "certificate_not_yet_valid"


class CertificateRevoked(SupplyChainError):
    code = "certificate_revoked"


# --- at rest ------------------------------------------------------------------------------


class FileModified(SupplyChainError):
    """An installed file differs from (or is missing against) the signed file manifest."""

    code = "file_modified"


class UnsignedPlugin(SupplyChainError):
    """An installed distribution with no signed install record, not on the allow-list."""

    code = "unsigned_plugin"


# --- installing ---------------------------------------------------------------------------


class DependencyRejected(SupplyChainError):
    """A dependency line that is not ``name==version --hash=sha256:...``, or a fetched wheel
    that is not what the signed entry pins."""

    code = "dependency_rejected"


class DependencyUnavailable(SupplyChainError):
    """A pinned dependency wheel could not be fetched (or its hash did not match)."""

    code = "dependency_unavailable"
    http_status = 502


class InstallFailed(SupplyChainError):
    """The verified bytes were refused by the install path (``distributions.install``): the
    detail starts with that path's own code (``import_failed: ...``); nothing changed."""

    code = "install_failed"
    http_status = 503


class IndexNameMismatch(SupplyChainError):
    """The signed document names another index than the one it was fetched for (a staging
    index signed with the same key, served at this index's URL)."""

    code = "index_name_mismatch"


class FetchRefused(SupplyChainError):
    """A fetch the transport rules refuse: a redirect to another scheme, host or port, an
    internal address, an artifact host the index's operator did not list."""

    code = "fetch_refused"


class VersionMismatch(SupplyChainError):
    """The signed entry's version differs from the version it is filed under or from the
    wheel's own metadata (an entry of one version filed as another)."""

    code = "version_mismatch"


class InvalidWheel(SupplyChainError):
    """A wheel that would run code when an interpreter starts (a ``.pth`` file, a top-level
    ``sitecustomize``/``usercustomize``) that its publisher did not declare."""

    code = "invalid_wheel"


class PermissionsMismatch(SupplyChainError):
    """The signed entry's permissions differ from what the wheel's own manifests declare."""

    code = "permissions_mismatch"


class DowngradeRefused(SupplyChainError):
    """A lower version than the installed one, without an explicit allow-downgrade."""

    code = "downgrade_refused"
    http_status = 409


class NameNotOwned(SupplyChainError):
    """An entry for a distribution name signed by a publisher that does not own the name in
    the index (``owners``), or an index that moved a name to another publisher without a
    transfer signed by its root key."""

    code = "name_not_owned"


class PublisherChanged(SupplyChainError):
    """The installed distribution came from another publisher (or index); replacing it needs
    an explicit, audited transfer (``--transfer-publisher``, API: ``transfer_publisher``)."""

    code = "publisher_changed"
    http_status = 409


class RotationInvalid(SupplyChainError):
    """An index-key rotation record that is not signed by the index's root key, is for
    another index, is malformed, or is not newer than the last rotation applied."""

    code = "rotation_invalid"
