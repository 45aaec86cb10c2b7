"""omi's blob store: model layers written once per machine, outside Pants's store, each model byte read once and
written once, and hard-linked out (into `dist/`).

Nothing here imports Pants. `pants package` does not use it yet: its model layers still go through Pants's store
(see `bench/README.md`, large models).
"""
