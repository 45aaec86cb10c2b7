"""Pytest fixtures for the registry tests (defined in `omi_testutil.registry`, shared with the e2e tests)."""

from omi_testutil.registry import auth_registry, proxy_factory, registry  # noqa: F401
