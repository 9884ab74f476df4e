"""Imbi logs plugin for Logz.io.

``search.LogzioLogs`` serves a project's Logs tab from the Logz.io Search API
(``POST /v1/search``); ``query`` turns an SDK ``LogQuery`` into the Elasticsearch body and
holds the cursor codec; ``_http`` maps HTTP outcomes to SDK errors.
"""

__version__ = "0.1.0"
