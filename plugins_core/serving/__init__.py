"""The request path: from a project's tab to the plugin that serves it, and back.

Read it in this order:

1. ``resolution``: which binding serves the tab (project → project type), its plugin's
   manifest, options and credentials, as one cached plan (``caching``, kept fresh by
   ``invalidation``);
2. ``confinement`` and ``hosts``: the options a project may set, and the hosts a credential
   may be sent to;
3. ``tabs``: the tab data calls (validate the query, call, normalize the answer);
4. ``runner``: the seam to the plugin, in-process or isolated (``plugins_core.isolation``);
5. ``health``: connection checks and badges; ``projects`` and ``storage``: the host services
   a plugin may ask for (project metadata, key-value storage).

May import ``registry``, ``isolation`` and ``models``; never a page, the API or a writer in
``provisioning``.
"""
