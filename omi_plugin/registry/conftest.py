"""Pytest fixtures for the registry tests (defined in `testutil.py`, shared with the test modules)."""

from omi_plugin.registry.testutil import auth_registry, proxy_factory, registry  # noqa: F401
