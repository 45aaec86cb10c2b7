"""Helpers for the tests only: synthetic .debs, OCI layouts and registries. No product target or tool sandbox
includes this package, so editing a helper re-runs tests, never a packaging process."""
