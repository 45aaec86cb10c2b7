"""Hermetic, distroless-style base images from pinned Debian packages (no Pants imports, stdlib only).

Lock (`generate_lock`) -> verified `.deb` downloads -> one deterministic layer (`build_layer`).
"""
