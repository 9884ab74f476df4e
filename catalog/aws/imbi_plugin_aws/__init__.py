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

from imbi_plugin_sdk import OptionField, ServiceTemplate

__version__ = "0.1.0"

REGIONS = (
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "ca-central-1",
    "sa-east-1",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eu-central-1",
    "eu-central-2",
    "eu-north-1",
    "eu-south-1",
    "eu-south-2",
    "ap-south-1",
    "ap-south-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-east-1",
    "me-south-1",
    "me-central-1",
    "af-south-1",
    "il-central-1",
    "us-gov-east-1",
    "us-gov-west-1",
)
"""AWS commercial and GovCloud regions (the service's ``region`` setting is one of them)."""

SERVICE_TEMPLATE = ServiceTemplate(
    vendor="aws",
    name="Amazon Web Services",
    category="cloud",
    base_url="",
    links=(("Console", "https://console.aws.amazon.com/"),),
    icon="imbi_plugin_aws:icon.svg",
    settings={"region": "us-east-1"},
    setting_fields=(
        OptionField(
            name="region",
            label="Region",
            choices=REGIONS,
            default="us-east-1",
            help="The AWS region of the parameters and log groups.",
        ),
        OptionField(
            name="base_url",
            label="Endpoint URL",
            default="",
            pattern=r"https?://[^\s/?#]+(:\d+)?/?",
            pattern_help="http(s)://host[:port]",
            help="Only for an AWS-compatible endpoint (LocalStack, moto); blank for AWS.",
        ),
    ),
)
"""The third-party service both AWS plugins belong to (ADR 0012)."""

PUBLISHER = "Imbi"

__all__ = ["PUBLISHER", "REGIONS", "SERVICE_TEMPLATE", "TOGETHER", "__version__"]

TOGETHER = (("access_key_id", "secret_access_key"),)
"""An access key ID and its secret are given both or neither (else the role is assumed)."""
