"""Imbi plugins for Amazon Web Services.

* ``ssm.SSMConfiguration`` (entry point ``aws-ssm``) serves a project's Configuration tab
  from SSM Parameter Store, under the path given by the binding's search template.
* ``cloudwatch.CloudWatchLogs`` (entry point ``aws-cloudwatch-logs``) serves a project's
  Logs tab from a CloudWatch Logs log group with ``FilterLogEvents``.

Both share ``SERVICE_TEMPLATE`` so a one-click install creates a single "Amazon Web
Services" service (region, optional endpoint override) whose credentials both use.
``session`` builds boto3 clients from those credentials and ``errors`` maps botocore
failures to SDK errors without ever echoing a credential or a configuration value.
"""

from imbi_plugin_sdk import ServiceTemplate

__version__ = "0.1.0"

SERVICE_TEMPLATE = ServiceTemplate(
    vendor="aws",
    name="Amazon Web Services",
    category="cloud",
    base_url="",
    links=(("Console", "https://console.aws.amazon.com/"),),
    icon="imbi_plugin_aws:icon.svg",
    settings={"region": "us-east-1"},
)
"""The third-party service both AWS plugins belong to (ADR 0012)."""

PUBLISHER = "Imbi"

__all__ = ["PUBLISHER", "SERVICE_TEMPLATE", "__version__"]
