"""The isolated plugin runtime: plugins run in supervised, sandboxed runner processes.

Modules, in the order a call travels: ``modes`` (which plugins run where), ``breaker``
(per-plugin circuit breaker), ``supervisor`` (warm runner pools, deadlines, crashes,
restarts), ``protocol`` (framed JSON over a socketpair, shared by host and child),
``codec`` (SDK models to and from the wire), ``sandbox`` (what the child applies to
itself before importing plugin code) and ``child`` (the runner's entry module, run as
``python -m plugins_core.isolation.child``). Importing this package imports no Django, and
``protocol``, ``codec``, ``sandbox`` and ``child`` import nothing but the standard library
and the SDK: they are what a runner process loads besides the plugin.
"""
