"""One compliance problem, printed as one line: `<target>: <where>: <field>: <problem> (<fix>)`.

Standard library only, so both the 3.9 static checker and the 3.11 smoke test can share it.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Callable, List, NoReturn


@dataclass(frozen=True)
class Violation:
    """A broken rule: which target, which file or artifact, which field, what is wrong and how to fix it."""

    target: str
    where: str
    field: str
    problem: str
    fix: str
    rule: str = ""

    def __str__(self) -> str:
        return f"{self.target}: {self.where}: {self.field}: {self.problem} ({self.fix})"

    def line(self, with_rule: bool = False) -> str:
        """The one-line form, optionally tagged with the rule id so users can look it up."""
        return f"{self} [{self.rule}]" if with_rule and self.rule else str(self)


@dataclass
class Collector:
    """Accumulates violations for one target and one file/artifact, so rules never stop at the first."""

    target: str
    where: str
    violations: List[Violation] = field(default_factory=list)

    def add(self, rule: str, field_path: str, problem: str, fix: str, where: str = "") -> None:
        self.violations.append(Violation(self.target, where or self.where, field_path, problem, fix, rule))

    def extend(self, violations: List[Violation]) -> None:
        self.violations.extend(violations)


def summary(violations: List[Violation], tool: str = "omi check") -> str:
    """Final line of a report: the count and which rules fired, e.g. `2 violations (OMI205 x1, OMI208 x1)`."""
    if not violations:
        return f"{tool}: OK, 0 violations"
    counts: dict = {}
    for v in violations:
        counts[v.rule or "?"] = counts.get(v.rule or "?", 0) + 1
    rules = ", ".join(f"{rule} x{n}" for rule, n in sorted(counts.items()))
    noun = "violation" if len(violations) == 1 else "violations"
    return f"{tool}: {len(violations)} {noun} ({rules})"


def report(violations: List[Violation], tool: str, with_rule: bool) -> int:
    """Print one line per violation and the summary line; return the exit code (1 when anything is wrong)."""
    for violation in violations:
        print(violation.line(with_rule=with_rule))
    print(summary(violations, tool))
    return 1 if violations else 0


def run_cli(main: Callable[[], int], tool: str, crashed: str) -> NoReturn:
    """Exit with `main()`'s code: Ctrl-C exits 130, and a crash is still one line (OMI900), never a traceback."""
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as e:  # last resort
        print(f"{tool}: error: OMI900 {crashed}: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
