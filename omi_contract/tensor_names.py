"""How a declared tensor finds its counterpart among a model's own inputs or outputs: by name when every declared
name is one of the model's, else by position. The plugin checks a model against model.yaml by this rule at package
time (MLflow signatures), and the runtime's handler feeds the model by it, so the two cannot disagree."""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple


def match_positions(declared: Sequence[str], actual: Sequence[Optional[str]]) -> List[Tuple[int, int]]:
    """(declared index, actual index) pairs; by position, only as many as both sides have."""
    if all(name in actual for name in declared):
        return [(i, actual.index(name)) for i, name in enumerate(declared)]
    return [(i, i) for i in range(min(len(declared), len(actual)))]
