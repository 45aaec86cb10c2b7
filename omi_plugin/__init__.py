"""omi: reproducible, daemonless OCI images for ML models, as a Pants plugin."""
