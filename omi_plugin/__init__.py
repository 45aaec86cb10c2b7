"""omi: reproducible, daemonless OCI images for ML models, as a Pants plugin."""

# The version omi reports in SBOMs and provenance (the builder's version); bumped with each release.
__version__ = "0.9.0"
