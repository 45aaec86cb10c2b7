"""omi's version: what the server reports and what SBOMs and provenance name the builder and the runtime by."""

OMI_VERSION = "0.9.0"  # bumped with each release
