"""Supply-chain documents about a model image, pure and Pants-free: the SBOM (`sbom`), the provenance statement
(`provenance`) and the OCI artifacts that attach them to the image and the model artifact (`referrers`)."""
