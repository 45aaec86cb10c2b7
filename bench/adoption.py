"""What adopting omi costs in Pants time: `pants package` and `pants check` of the same ONNX model in a repository
that installs omi from its wheels (the README's "Use omi in your repository", a vanilla pip-installed Pants 2.17.1)
against this repository (`./pants`, the plugin on `pythonpath`), cold and warm, without and with pantsd.

    python3 bench/adoption.py [--runs 3]

Both repositories are fresh copies under a temporary directory: this one's tracked files (target
`examples/digits_onnx:digits-onnx`), and the adopting one made by `tests/e2e/adopter.py` (target `models/digits:digits`,
the same model.onnx and model.yaml) from wheels built here first. Per repository, in this order:
  - start-up: `pants --version`, no pantsd (median of --runs): what every daemon-less command pays before work,
    plugin resolution included (the adopting repository resolves `[GLOBAL].plugins`; `./pants` skips it);
  - package cold: `--no-pantsd --no-local-cache package` (every process runs again; downloads stay cached);
  - package warm, check warm: `--no-pantsd`, median of --runs;
  - with pantsd: the first `package` (starts the daemon), then warm `package` and `check`, median of --runs.
and prints each time and the ratio adopting / this repository. The adopting repository's lockfile is generated
first, untimed. Daemons are stopped and the temporary directory removed at the end.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List

from repo_copy import REPO, copy_repo

sys.path.insert(0, str(REPO / "tests" / "e2e"))
from adopter import build_wheels, commit, pants_env, vanilla_pants, write_adopter  # noqa: E402


class Repo:
    def __init__(self, name: str, root: Path, argv: List[str], target: str, env: Dict[str, str]) -> None:
        self.name, self.root, self.argv, self.target, self.env = name, root, argv, target, env

    def time(self, *args: str) -> float:
        start = time.monotonic()
        proc = subprocess.run([*self.argv, "--no-dynamic-ui", *args], cwd=self.root, env=self.env,
                              capture_output=True, text=True)
        elapsed = time.monotonic() - start
        if proc.returncode != 0:
            raise SystemExit(f"{self.name}: pants {' '.join(args)} failed:\n{(proc.stdout + proc.stderr)[-3000:]}")
        return elapsed

    def stop_pantsd(self) -> None:
        subprocess.run(["pkill", "-f", f"pantsd \\[{self.root}\\]"], check=False)


def measure(repo: Repo, runs: int) -> Dict[str, float]:
    def median(*args: str) -> float:
        return statistics.median(repo.time(*args) for _ in range(runs))

    out = {
        "start-up (--version)": median("--no-pantsd", "--version"),
        "package cold": repo.time("--no-pantsd", "--no-local-cache", "package", repo.target),
        "package warm": median("--no-pantsd", "package", repo.target),
        "check warm": median("--no-pantsd", "check", repo.target),
    }
    try:
        out["pantsd: first package"] = repo.time("--pantsd", "package", repo.target)
        out["pantsd: package warm"] = median("--pantsd", "package", repo.target)
        out["pantsd: check warm"] = median("--pantsd", "check", repo.target)
    finally:
        repo.stop_pantsd()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="omi-adoption-bench-"))
    try:
        here_root = scratch / "omi"
        copy_repo(here_root)
        wheels = scratch / "wheels"
        build_wheels(here_root, ["--no-pantsd"], wheels)
        team_root = scratch / "team"
        team_root.mkdir()
        write_adopter(team_root, wheels)
        team_env = pants_env()
        subprocess.run([str(vanilla_pants()), "--no-pantsd", "generate-lockfiles"], cwd=team_root, env=team_env,
                       check=True, capture_output=True)
        commit(team_root, "lock")
        here = Repo("this repository", here_root, ["./pants"], "examples/digits_onnx:digits-onnx",
                    {k: v for k, v in pants_env().items() if not k.startswith("PANTS_")})
        team = Repo("adopting repository", team_root, [str(vanilla_pants())], "models/digits:digits", team_env)
        results = {repo.name: measure(repo, args.runs) for repo in (here, team)}
        print(f"{'':28} {'this repository':>16} {'adopting':>10} {'ratio':>7}")
        for key in results[here.name]:
            a, b = results[here.name][key], results[team.name][key]
            print(f"{key:28} {a:15.1f}s {b:9.1f}s {b / a:6.2f}x")
        return 0
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
