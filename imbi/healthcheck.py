"""The container health check: ``python -m imbi.healthcheck`` exits 0 when ``/healthz`` is 200
(``python -m imbi.healthcheck /livez``: liveness).

It talks plain HTTP to the app on ``127.0.0.1:$PORT`` (default 8000) the way the TLS proxy
does: with a ``Host`` the app accepts (the first concrete name in ``ALLOWED_HOSTS``) and
``X-Forwarded-Proto: https``, so neither the HTTPS redirect nor host validation turns it
away, and redirects are never followed. Standard library only: it starts in milliseconds
and imports neither Django nor the settings. On failure it prints one line and exits 1.
"""

from __future__ import annotations

import http.client
import os
import sys


def health_host() -> str:
    """A host name that ``ALLOWED_HOSTS`` accepts (``*`` and ``.example.com`` included)."""
    for entry in os.environ.get("ALLOWED_HOSTS", "127.0.0.1,localhost").split(","):
        entry = entry.strip()
        if not entry or entry == "*":
            continue
        return f"healthcheck{entry}" if entry.startswith(".") else entry
    return "localhost"


def check(port: int, timeout: float = 5.0, path: str = "/healthz") -> tuple[bool, str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request(
            "GET",
            path,
            headers={"Host": health_host(), "X-Forwarded-Proto": "https"},
        )
        response = connection.getresponse()
        body = response.read(2000).decode(errors="replace")
    except OSError as exc:
        return False, f"{path[1:]}: cannot reach 127.0.0.1:{port} ({type(exc).__name__})"
    finally:
        connection.close()
    if response.status != 200:
        return False, f"{path[1:]}: HTTP {response.status} {body.strip()[:200]}"
    return True, f"{path[1:]}: ok"


def main() -> int:
    path = sys.argv[1] if len(sys.argv) > 1 else "/healthz"  # /livez: liveness only
    if path not in ("/healthz", "/readyz", "/livez"):
        print(f"usage: python -m imbi.healthcheck [/healthz|/readyz|/livez], not {path}")
        return 2
    ok, message = check(int(os.environ.get("PORT", "8000")), path=path)
    print(message, file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
