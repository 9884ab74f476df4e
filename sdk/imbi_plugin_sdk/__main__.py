"""``python -m imbi_plugin_sdk``: the same as the ``imbi-plugin`` command."""

import sys

from .cli import main

sys.exit(main())
