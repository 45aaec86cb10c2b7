"""omi's blob store: model layers written once per machine, outside Pants's store, each model byte read once and
written once, and hard-linked out (into `dist/`).

Nothing here imports Pants; `omi_plugin/util_rules/stored_layers.py` is the Pants side.
"""
