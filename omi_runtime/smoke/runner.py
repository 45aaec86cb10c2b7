"""Live smoke test (OMI4xx): start the runtime once per declared interface and talk to it like a platform would.

    python -m omi_runtime.smoke --models-dir DIR --model NAME --interfaces '["kfserving.v1","modzy.v2"]' \
        [--target ADDR] [--timeout 180] [--start-timeout 60] [--call-timeout 30] -- python -m omi_runtime

For each interface: pick a free port, start the command with INTERFACE/PROTOCOL/HTTP_PORT/MODEL_NAME and
OMI_MODELS_DIR set, wait (bounded) until it answers, probe it (`probes`), and always reap it: the command
runs in its own process group, which gets SIGTERM, then SIGKILL. Prints one line per violation and a summary;
exit 1 if any. Needs CPython 3.11 with grpcio, grpcio-reflection, protobuf, numpy (the `runtime` resolve).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence

from omi_contract import image as contract
from omi_contract.interfaces import SERVED, served
from omi_contract.violation import Collector, Violation, report
from omi_runtime.server import ERROR_PREFIX, LOAD_FAILED
from omi_runtime.smoke import probes as smoke_probes

TERM_GRACE_SECONDS = 5.0
POLL_SECONDS = 0.2


@dataclass(frozen=True)
class SmokeRequest:
    target: str
    models_dir: str
    model: str
    interfaces: Sequence[str]
    argv: Sequence[str]
    env: Mapping[str, str]  # base environment of the runtime (the OMI variables are added per interface)
    timeout: float = 180.0  # whole smoke test
    start_timeout: float = 60.0  # per start, until the server answers
    call_timeout: float = 30.0  # per request


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """The runtime under test, in its own process group so that everything it spawns is reaped with it."""

    def __init__(self, argv: Sequence[str], env: Mapping[str, str]) -> None:
        self.stderr = tempfile.TemporaryFile()
        self.process = subprocess.Popen(list(argv), env=dict(env), stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=self.stderr, start_new_session=True)

    def exited(self, timeout: float = 0.0) -> bool:
        try:
            self.process.wait(timeout=timeout) if timeout > 0 else None
        except subprocess.TimeoutExpired:
            return False
        return self.process.poll() is not None

    def last_error(self) -> str:
        self.stderr.seek(0)
        lines = [line.strip() for line in self.stderr.read().decode("utf-8", "replace").splitlines() if line.strip()]
        return lines[-1][:300] if lines else "no output on stderr"

    def reap(self) -> None:
        """SIGTERM the group, then SIGKILL whatever is left; never leaves a process behind."""
        for sig, grace in ((signal.SIGTERM, TERM_GRACE_SECONDS), (signal.SIGKILL, TERM_GRACE_SECONDS)):
            try:
                os.killpg(self.process.pid, sig)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                continue
            if sig == signal.SIGTERM:
                try:  # children of a process that exited on SIGTERM may still be around
                    os.killpg(self.process.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            break
        self.stderr.close()


def _wait_ready(server: Server, interface: str, port: int, model: str, until: float) -> Optional[str]:
    """None once the server answers, else why not."""
    while time.monotonic() < until:
        if server.exited():
            return f"exited with code {server.process.returncode} before becoming ready: {server.last_error()}"
        step = max(0.1, min(1.0, until - time.monotonic()))
        if served(interface).readiness == "http":
            if smoke_probes.http_ready(port, model, step):
                return None
            time.sleep(POLL_SECONDS)
        elif smoke_probes.grpc_ready(port, step):
            return None
    return "did not become ready in time"


def _load_failure(server: Server, model: str) -> str:
    """The runtime's one line for a model that does not load, without its prefixes."""
    line = server.last_error()
    for prefix in (ERROR_PREFIX, LOAD_FAILED.format(name=model)):
        line = line[len(prefix):] if line.startswith(prefix) else line
    return line


def _smoke_one(request: SmokeRequest, model_doc: Mapping[str, Any], interface: str, deadline: float,
               out: Collector) -> bool:
    """Probe one interface; False when the model did not load (no other interface can serve it either)."""
    port = free_port()
    row = served(interface)
    env = {**request.env, contract.ENV_INTERFACE: row.interface, contract.ENV_PROTOCOL: row.protocol,
           contract.ENV_HTTP_PORT: str(port), contract.ENV_MODEL_NAME: request.model,
           contract.ENV_MODELS_DIR: request.models_dir}
    env.setdefault(contract.ENV_HOST, "127.0.0.1")
    started = time.monotonic()
    try:
        server = Server(request.argv, env)
    except OSError as e:
        out.add("OMI401", "start", f"cannot start {' '.join(request.argv)}: {e}", "pass the runtime command after --")
        return True
    try:
        until = min(deadline, started + request.start_timeout)
        problem = _wait_ready(server, interface, port, request.model, until)
        if problem is not None and server.process.returncode == contract.EXIT_MODEL_LOAD:
            out.add("OMI401", "load", _load_failure(server, request.model),
                    smoke_probes.LOAD_FIX,
                    where=f"model {request.model}")
            return False
        if problem is not None:
            limit = f"{until - started:.0f}s"
            fix = "see the runtime's error above" if "exited" in problem \
                else f"make it listen on HTTP_PORT within {limit}"
            out.add("OMI401", "start", problem, fix)
            return True
        probe = smoke_probes.Probe(model_doc, port, deadline, request.call_timeout, out, server.exited)
        getattr(smoke_probes, row.probe)(probe)
        return not probe.load_failed
    finally:
        server.reap()


def load_model_doc(models_dir: str, model: str) -> Dict[str, Any]:
    with open(os.path.join(models_dir, model, contract.RECORD_FILE), encoding="utf-8") as f:
        doc = json.load(f)
    if not isinstance(doc, dict):
        raise ValueError("expected a JSON object")
    return doc


def run_smoke(request: SmokeRequest) -> List[Violation]:
    """Every OMI4xx violation for one model, interface by interface, within `request.timeout` overall."""
    deadline = time.monotonic() + request.timeout
    out = Collector(request.target, "smoke")
    try:
        model_doc = load_model_doc(request.models_dir, request.model)
    except (OSError, ValueError) as e:
        out.add("OMI401", contract.RECORD_FILE, f"cannot be read: {e}",
                f"pass --models-dir holding <model>/{contract.RECORD_FILE}",
                where=os.path.join(request.models_dir, request.model))
        return out.violations
    # Interfaces that load the model before listening go first: a model that does not load is then reported once,
    # from the first start, and the others are not tried.
    ordered = sorted(request.interfaces, key=lambda i: not (i in SERVED and served(i).load_at_start))
    for interface in ordered:
        interface_out = Collector(request.target, f"{interface} server")
        if interface not in SERVED:
            interface_out.add("OMI401", "interface", f"{interface!r} cannot be smoke-tested",
                              "declare one of " + ", ".join(SERVED))
        elif time.monotonic() >= deadline:
            interface_out.add("OMI401", "start", f"not tested: the smoke test's {request.timeout:.0f}s ran out",
                              "raise the timeout or make start-up faster")
        else:
            try:
                loaded = _smoke_one(request, model_doc, interface, deadline, interface_out)
            except Exception as e:  # one line per problem, never a traceback
                interface_out.add("OMI900", "(checker)", f"smoke test crashed: {type(e).__name__}: {e}",
                                  "this is a bug in omi_runtime.smoke: report it with this line")
                loaded = True
            if not loaded:
                out.extend(interface_out.violations)
                break
        out.extend(interface_out.violations)
    return out.violations


def main(argv: Optional[Sequence[str]] = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    command: List[str] = []
    if "--" in args_list:
        split = args_list.index("--")
        args_list, command = args_list[:split], args_list[split + 1:]
    parser = argparse.ArgumentParser(prog="python -m omi_runtime.smoke", description=__doc__.split("\n")[0])
    parser.add_argument("--models-dir", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--interfaces", required=True, help='JSON list, e.g. ["kfserving.v2","modzy.v2"]')
    parser.add_argument("--target", help="prefix of every line (default: the model name)")
    parser.add_argument("--timeout", type=float, default=180.0)
    parser.add_argument("--start-timeout", type=float, default=60.0)
    parser.add_argument("--call-timeout", type=float, default=30.0)
    parser.add_argument("--rule-ids", action="store_true", help="append [OMIxxx] to each line")
    args = parser.parse_args(args_list)
    try:
        interfaces = json.loads(args.interfaces)
        if not isinstance(interfaces, list) or not all(isinstance(i, str) for i in interfaces):
            raise ValueError("not a list of strings")
    except ValueError as e:
        print(f"omi smoke: error: --interfaces: {e}", file=sys.stderr)
        return 2
    if not command:
        print("omi smoke: error: give the runtime command after --", file=sys.stderr)
        return 2
    violations = run_smoke(SmokeRequest(args.target or args.model, os.path.abspath(args.models_dir), args.model,
                                        interfaces, command, dict(os.environ), args.timeout, args.start_timeout,
                                        args.call_timeout))
    return report(violations, "omi smoke", args.rule_ids)

