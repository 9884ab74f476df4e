"""The browsable API's renderer: DRF's, with the page's language declared and its format
menu button named.

DRF's ``rest_framework/base.html`` writes a bare ``<html>`` outside any template block, so
screen readers cannot tell the page's language (axe-core's ``html-has-lang``), and its GET
format button is named only by a ``title`` that Bootstrap's tooltip script removes
(``button-name``); this renderer adds ``lang="en"`` and an ``aria-label``. The page itself
is ``templates/rest_framework/api.html``.
"""

from __future__ import annotations

from typing import Any

from rest_framework import renderers


class BrowsableAPIRenderer(renderers.BrowsableAPIRenderer):
    def render(
        self, data: Any, accepted_media_type: Any = None, renderer_context: Any = None
    ) -> Any:
        page = super().render(data, accepted_media_type, renderer_context)
        if isinstance(page, str):
            return page.replace("<html>", '<html lang="en">', 1).replace(
                'data-toggle="dropdown" title="Specify a format for the GET request"',
                'data-toggle="dropdown" title="Specify a format for the GET request" '
                'aria-label="Specify a format for the GET request"',
            )
        return page
