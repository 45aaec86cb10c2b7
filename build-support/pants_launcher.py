"""Starts Pants 2.17.1 without building its plugin-resolution scheduler when no `[GLOBAL].plugins` are configured.

Every Pants process that does not hand its command to pantsd (`--no-pantsd`, CI, the daemon itself when it starts)
first builds a "bootstrap" scheduler whose only use is resolving `[GLOBAL].plugins` from PyPI, and then the real
one. This repository's plugin is in-repo (`backend_packages`), so the bootstrap scheduler never runs a rule, yet on
these 2-core machines building its rule graph costs ~8 s of the ~22 s start-up. This launcher makes it lazy: it is
built on first use, and plugin resolution is skipped when there are no plugins to resolve, exactly as Pants's own
`resolve_plugins` rule returns nothing then. Any other Pants version runs unpatched.

`./pants` runs this file with the bootstrap venv's interpreter; it stays `sys.argv[0]`, so pantsd, which Pants starts
as `sys.executable + sys.argv`, is launched through it too.
"""

from __future__ import annotations

from typing import Any, Optional


def _patch_bootstrap_scheduler() -> None:
    from pants.init import options_initializer
    from pants.init.plugin_resolver import PluginResolver

    create = options_initializer.create_bootstrap_scheduler

    class LazyBootstrapScheduler:
        def __init__(self, *args: Any) -> None:
            self._args = args
            self._scheduler: Optional[Any] = None

        def __getattr__(self, name: str) -> Any:
            if self._scheduler is None:
                self._scheduler = create(*self._args)
            return getattr(self._scheduler, name)

    resolve = PluginResolver.resolve

    def resolve_configured_plugins(self: PluginResolver, options_bootstrapper: Any, env: Any) -> Any:
        if not options_bootstrapper.get_bootstrap_options().for_global_scope().plugins:
            return self._working_set
        return resolve(self, options_bootstrapper, env)

    options_initializer.create_bootstrap_scheduler = LazyBootstrapScheduler  # type: ignore[assignment]
    PluginResolver.resolve = resolve_configured_plugins  # type: ignore[method-assign]


def main() -> None:
    from pants.version import VERSION

    if str(VERSION) == "2.17.1":
        _patch_bootstrap_scheduler()
    from pants.bin.pants_loader import main as pants_main

    pants_main()  # exits with the goal's code itself


if __name__ == "__main__":
    main()
