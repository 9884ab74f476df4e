"""Registry imports off the host: entry points of untrusted distributions are imported and
validated in a sandboxed runner, never in the host process.

``inspect_entries(slug, entries, spec_for)`` starts one runner in inspection mode, which
reports each entry point as it finishes importing it. An entry point that does not finish
within the import deadline, or during whose import the runner dies, is reported
``ok=False`` with the reason; the runner is killed and the remaining entry points are
inspected in a fresh one. The host process never runs a line of the plugin's code here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from imbi_plugin_sdk import PluginError

from . import protocol
from .supervisor import RunnerProcess, RunnerSpec, _signal_name


@dataclass(frozen=True)
class Inspected:
    ok: bool
    reason: str = ""
    manifest: dict[str, Any] | None = None
    legacy_sdk: bool = False


def inspect_entries(
    entries: dict[str, str], spec_for: Callable[[dict[str, str]], RunnerSpec]
) -> dict[str, Inspected]:
    """``{name: Inspected}`` for every entry point in ``entries`` (name -> target)."""
    results: dict[str, Inspected] = {}
    pending = dict(entries)
    while pending:
        spec = spec_for(pending)
        try:
            runner = RunnerProcess.start(spec)
        except (OSError, PluginError) as exc:
            for name in pending:
                results[name] = Inspected(False, f"runner could not start: {exc}")
            return results
        try:
            while pending:
                try:
                    frame = runner.recv(spec.start_timeout)
                except TimeoutError:
                    name = next(iter(pending))
                    results[name] = Inspected(
                        False, f"import did not finish within {spec.start_timeout:g}s"
                    )
                    del pending[name]
                    break
                except protocol.ConnectionClosed:
                    name = next(iter(pending))
                    code = runner.kill()
                    results[name] = Inspected(False, f"runner {_signal_name(code)} while importing")
                    del pending[name]
                    break
                except protocol.ProtocolError as exc:
                    name = next(iter(pending))
                    results[name] = Inspected(False, f"runner broke the protocol: {exc}")
                    del pending[name]
                    break
                if frame.get("t") == "hello":
                    if frame.get("error"):
                        for name in pending:
                            results[name] = Inspected(False, str(frame["error"]))
                        pending.clear()
                    break
                name = str(frame.get("name"))
                if frame.get("t") != "entry" or name not in pending:
                    continue
                manifest = frame.get("manifest")
                results[name] = Inspected(
                    bool(frame.get("ok")),
                    str(frame.get("reason", ""))[:500],
                    manifest if isinstance(manifest, dict) else None,
                    frame.get("legacy_sdk") is True,
                )
                del pending[name]
        finally:
            runner.kill()
    return results
