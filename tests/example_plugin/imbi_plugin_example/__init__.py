"""The example plugin distribution used by the platform's own tests.

``config.ExampleConfiguration`` stores values in the host's key-value storage,
``config.StaticConfiguration`` serves its options (a no-op used by benchmarks),
``logs.ExampleLogs`` serves generated log lines with cursors, filters and a histogram,
``projects.ExampleProjects`` serves project metadata (``context.projects``, contract 1.2).
``broken`` and ``future`` are deliberately unloadable.
"""

from imbi_plugin_sdk import ServiceTemplate

TEMPLATE = ServiceTemplate(
    vendor="example",
    name="Example Service",
    category="testing",
    base_url="https://api.example.com",
    links=(("Docs", "https://example.com/docs"),),
    icon="imbi_plugin_example:icon.svg",
    settings={"region": "eu-west-1"},
)
