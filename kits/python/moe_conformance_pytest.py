"""Run the moe-conformance suite from pytest: one test per case ID.

In your engine's test suite (e.g. tests/test_moe_conformance.py):

    import sys
    from moe_conformance_pytest import conformance_tests

    test_moe_conformance = conformance_tests(
        loader=f"{sys.executable} my_loader.py",   # a loader built on moe_conformance_kit
        args=["--cases", "30", "--timeout", "120"],  # any `moe-conformance check` options
    )

``pytest`` collects one test per case (``moe-conformance check --list``), runs the whole suite
once, as workers (``--worker``), when the first of them runs, and gives each test its case's
verdict: passed; failed with the harness's message, its diagnosis (what the loader did wrong,
e.g. ``[gate-up-swapped] layers.0.experts.w13: ...``), tensor, expected/found and the command
that replays it; skipped with the reason (``not declared: ...`` for a case outside the loader's
capabilities, or an expectations line); xfail for an expected failure; a warning for a forward
within the loose tolerance only.

The harness is ``npx moe-conformance`` unless ``harness=`` or ``$MOE_CONFORMANCE`` says otherwise
(a command line, split like a shell would). Standard library plus pytest.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import tempfile
import warnings
from typing import Any, Callable, Dict, Optional, Sequence


class HarnessError(RuntimeError):
    """The harness could not list or run the cases."""


def harness_argv(harness: Optional[str] = None) -> list:
    return shlex.split(harness or os.environ.get("MOE_CONFORMANCE", "npx moe-conformance"))


def _check_argv(loader: str, args: Sequence[str], worker: bool, harness: Optional[str]) -> list:
    return [*harness_argv(harness), "check", "--loader", loader, *(["--worker"] if worker else []), *args]


def list_cases(loader: str, args: Sequence[str] = (), worker: bool = True, harness: Optional[str] = None, cwd: Optional[str] = None) -> list:
    """The case IDs `check` would run with these options."""
    argv = _check_argv(loader, args, worker, harness) + ["--list"]
    p = subprocess.run(argv, cwd=cwd, capture_output=True, text=True)
    if p.returncode != 0:
        raise HarnessError(f"{shlex.join(argv)} exited {p.returncode}: {p.stderr.strip()[-2000:]}")
    return [line for line in p.stdout.splitlines() if line.strip()]


def run_cases(loader: str, args: Sequence[str] = (), worker: bool = True, harness: Optional[str] = None, cwd: Optional[str] = None, timeout: Optional[float] = None) -> Dict[str, Any]:
    """Runs the suite once; returns the JSON results file (``results``: one record per case, ``loader``: its declaration)."""
    with tempfile.TemporaryDirectory(prefix="moe-pytest-") as tmp:
        report = os.path.join(tmp, "results.json")
        argv = _check_argv(loader, args, worker, harness) + ["--report", "json", report]
        p = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout)
        if not os.path.exists(report):
            raise HarnessError(f"{shlex.join(argv)} exited {p.returncode} without results: {(p.stderr or p.stdout).strip()[-2000:]}")
        with open(report, encoding="utf-8") as f:
            return json.load(f)


def failure_text(result: Dict[str, Any]) -> str:
    """A failed case as the harness's terminal report gives it: message, diagnosis, tensor, expected/found, seed, replay."""
    f = result.get("failure") or {}
    lines = [f.get("message", result["status"])]
    for d in f.get("diagnosis") or []:
        tensor = f"{d['tensor']}: " if d.get("tensor") else ""
        lines.append(f"[{d['kind']}] {tensor}{d.get('detail', '')}")
    for key in ("tensor", "expected", "found"):
        if key in f:
            lines.append(f"{key}: {f[key]}")
    if "seed" in result:
        lines.append(f"seed: {result['seed']}")
    lines.append(f"replay: {result.get('replay', '')}")
    return "\n".join(lines)


def verdict(result: Optional[Dict[str, Any]], case_id: str) -> None:
    """Turns one case's record into pytest's outcome (returns on pass)."""
    import pytest

    if result is None:
        pytest.fail(f"case {case_id} is missing from the harness's results", pytrace=False)
    status = result["status"]
    note = result.get("note") or ""
    if status == "pass":
        return
    if status == "warn":
        warnings.warn(f"{case_id}: {note}")
        return
    if status == "skip":
        pytest.skip(note or "skipped")
    if status == "xfail":
        pytest.xfail(f"expected failure: {note}")
    pytest.fail(failure_text(result), pytrace=False)


def conformance_tests(loader: str, args: Sequence[str] = (), worker: bool = True, harness: Optional[str] = None, cwd: Optional[str] = None, timeout: Optional[float] = None) -> Callable:
    """A pytest test function parametrized over the suite's case IDs (assign it to a ``test_*`` name)."""
    import pytest

    ids = list_cases(loader, args, worker, harness, cwd)
    state: Dict[str, Any] = {}

    def results() -> Dict[str, Any]:
        if "error" in state:
            raise state["error"]
        if "results" not in state:
            try:
                data = run_cases(loader, args, worker, harness, cwd, timeout)
            except (HarnessError, subprocess.TimeoutExpired) as e:
                state["error"] = e
                raise
            state["results"] = {r["id"]: r for r in data["results"]}
            state["loader"] = data.get("loader")
        return state["results"]

    @pytest.mark.parametrize("case_id", ids)
    def test_moe_conformance(case_id: str) -> None:
        verdict(results().get(case_id), case_id)

    test_moe_conformance.results = results  # type: ignore[attr-defined]
    return test_moe_conformance
