"""A refused start: one line on stderr and exit status 3 (gunicorn's "worker failed to boot").

Used by the production settings (a missing or weak key, no Redis, ...) and the encryption key
check (``imbi.core.keycheck``). Standard library only: the settings import it.

Under a bare ``gunicorn imbi.wsgi`` every worker loads the application, so every worker
refuses. gunicorn's master halts on the first worker that exits 3, but a second one exiting 3
while it halts makes it trip over its own halt (a traceback and status 1). So only the first
refusing worker of a master prints and exits; the others wait to be stopped by the halting
master (a marker file per master process decides which is first).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import tempfile
import time
from typing import NoReturn

EXIT_STATUS = 3


def _gunicorn_worker() -> bool:
    """This process is a worker forked by a gunicorn master (not the master itself)."""
    if not os.path.basename(sys.argv[0] if sys.argv else "").startswith("gunicorn"):
        return False
    try:
        with open(f"/proc/{os.getppid()}/cmdline", "rb") as cmdline:
            return b"gunicorn" in cmdline.read()
    except OSError:
        return False


def _first_for_this_master() -> bool:
    """True for the first worker of this gunicorn master to refuse (a marker file named after
    the master's pid and start time, so a reused pid never matches)."""
    master = os.getppid()
    try:
        with open(f"/proc/{master}/stat", "rb") as stat:
            started = stat.read().rsplit(b")", 1)[1].split()[19].decode()
    except (OSError, IndexError):
        return True
    folder = tempfile.gettempdir()
    for stale in os.listdir(folder):  # markers of masters that are gone
        if stale.startswith("imbi-refused-"):
            pid = stale.split("-")[2]
            if pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(folder, stale))
    path = os.path.join(folder, f"imbi-refused-{master}-{started}")
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        return False
    except OSError:
        return True
    return True


def refuse(reason: str) -> NoReturn:
    if _gunicorn_worker() and not _first_for_this_master():
        # Another worker of this master refused already: the master is halting and stops us
        # (default signal handling, so its SIGTERM ends this process at once).
        for name in ("SIGTERM", "SIGINT", "SIGQUIT"):
            signal.signal(getattr(signal, name), signal.SIG_DFL)
        time.sleep(60)
    # One write(2) of the whole line: a pipe keeps it whole (under PIPE_BUF), so the master's
    # log lines written meanwhile never land in the middle of it.
    sys.stderr.flush()
    os.write(2, f"imbi: refusing to start: {reason}\n".encode(errors="replace"))
    sys.exit(EXIT_STATUS)
