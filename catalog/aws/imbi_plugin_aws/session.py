"""Build boto3 clients from the host's ``Credentials`` and ``PluginContext``.

Credentials (all optional individually, see ``CREDENTIAL_FIELDS``): an access key pair,
a role to assume (``role_arn``, with an optional ``external_id``), or both. With only
``role_arn`` the role is assumed with the host's own AWS identity (instance profile,
environment). The region comes from the service setting ``region`` (default
``us-east-1``); a non-empty service setting ``base_url`` overrides the endpoint of every
AWS API the plugin calls (LocalStack, moto, a proxy).
"""

from __future__ import annotations

import re
from typing import Any

import boto3
from botocore.config import Config
from imbi_plugin_sdk import CredentialField, Credentials, CredentialsMissing, PluginContext

from .errors import translate_errors

__all__ = ["CREDENTIAL_FIELDS", "DEFAULT_REGION", "AwsClients", "endpoint_url", "region"]

DEFAULT_REGION = "us-east-1"

CREDENTIAL_FIELDS = (
    CredentialField(
        name="access_key_id",
        label="Access key ID",
        secret=False,
        required=False,
        help="An IAM access key ID (AKIA...). Leave empty to assume role_arn with the "
        "platform's own AWS identity.",
    ),
    CredentialField(
        name="secret_access_key",
        label="Secret access key",
        secret=True,
        required=False,
        help="The secret of the access key; required when an access key ID is given.",
    ),
    CredentialField(
        name="role_arn",
        label="Role ARN",
        secret=False,
        required=False,
        help="An IAM role to assume (arn:aws:iam::123456789012:role/imbi-reader).",
    ),
    CredentialField(
        name="external_id",
        label="External ID",
        secret=False,
        required=False,
        help="The external ID the role's trust policy requires, if any.",
    ),
)

_SESSION_NAME_RE = re.compile(r"[^\w+=,.@-]")
_ASSUMED_ROLE_SECONDS = 900


def region(context: PluginContext) -> str:
    """The AWS region of the service (``us-east-1`` when not set)."""
    value = context.service_settings.get("region")
    return value.strip() if isinstance(value, str) and value.strip() else DEFAULT_REGION


def endpoint_url(context: PluginContext) -> str | None:
    """The endpoint override of the service, or ``None`` for the AWS default."""
    value = context.service_settings.get("base_url")
    return value.strip() if isinstance(value, str) and value.strip() else None


def _credential(credentials: Credentials, name: str) -> str:
    return (credentials.get(name) or "").strip()


class AwsClients:
    """boto3 clients for one handler call; the session (and any assumed role) is reused."""

    def __init__(self, context: PluginContext, credentials: Credentials) -> None:
        self._context = context
        self._credentials = credentials
        self._session: boto3.session.Session | None = None
        self._clients: dict[str, Any] = {}
        self.config = Config(
            region_name=region(context),
            connect_timeout=context.timeout,
            read_timeout=context.timeout,
            retries={"max_attempts": 2, "mode": "standard"},
            user_agent_extra="imbi-plugin-aws/0.1.0",
        )

    def check(self) -> None:
        """Raise ``CredentialsMissing`` unless a key pair or a role ARN is configured."""
        key_id = _credential(self._credentials, "access_key_id")
        secret = _credential(self._credentials, "secret_access_key")
        if key_id and not secret:
            raise CredentialsMissing("secret_access_key is required with access_key_id")
        if secret and not key_id:
            raise CredentialsMissing("access_key_id is required with secret_access_key")
        if not key_id and not _credential(self._credentials, "role_arn"):
            raise CredentialsMissing(
                "AWS credentials need an access key pair (access_key_id and "
                "secret_access_key) or a role_arn"
            )

    def client(self, service: str) -> Any:
        """A boto3 client for ``service`` (``ssm``, ``logs``, ``sts``)."""
        if service not in self._clients:
            session = self._get_session()
            with translate_errors(f"the {service} client"):
                self._clients[service] = self._make(session, service)
        return self._clients[service]

    def _make(self, session: boto3.session.Session, service: str) -> Any:
        return session.client(
            service,
            region_name=region(self._context),
            endpoint_url=endpoint_url(self._context),
            config=self.config,
        )

    def _get_session(self) -> boto3.session.Session:
        if self._session is not None:
            return self._session
        self.check()
        key_id = _credential(self._credentials, "access_key_id")
        with translate_errors("the AWS session"):
            base = boto3.session.Session(
                aws_access_key_id=key_id or None,
                aws_secret_access_key=_credential(self._credentials, "secret_access_key") or None,
                region_name=region(self._context),
            )
        role_arn = _credential(self._credentials, "role_arn")
        if role_arn:
            base = self._assume_role(base, role_arn)
        self._session = base
        return base

    def _assume_role(self, base: boto3.session.Session, role_arn: str) -> boto3.session.Session:
        name = _SESSION_NAME_RE.sub("-", f"imbi-{self._context.organization}")[:64]
        request: dict[str, Any] = {
            "RoleArn": role_arn,
            "RoleSessionName": name,
            "DurationSeconds": _ASSUMED_ROLE_SECONDS,
        }
        external_id = _credential(self._credentials, "external_id")
        if external_id:
            request["ExternalId"] = external_id
        with translate_errors("the role in role_arn"):
            answer = self._make(base, "sts").assume_role(**request)
        temporary = answer["Credentials"]
        return boto3.session.Session(
            aws_access_key_id=temporary["AccessKeyId"],
            aws_secret_access_key=temporary["SecretAccessKey"],
            aws_session_token=temporary["SessionToken"],
            region_name=region(self._context),
        )
