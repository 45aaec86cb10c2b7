"""`python -m omi_runtime.smoke`: the live smoke test's command line (see `runner`)."""

from omi_contract.violation import run_cli
from omi_runtime.smoke.runner import main

if __name__ == "__main__":
    run_cli(main, "omi smoke", "the smoke test crashed")
