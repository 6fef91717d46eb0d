"""The pytest entry point end to end: pytest collects one test per case ID from the harness and
reports each case's verdict. Needs pytest, Node and this repository's source (the harness runs
through tsx); skipped otherwise, with the reason.

    .venv/bin/python -m pytest kits/python/tests/test_pytest_entry.py
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
MAIN = REPO / "app" / "cli" / "main.ts"
NODE = shutil.which("node")

try:
    import pytest  # noqa: F401

    HAVE_PYTEST = True
except ImportError:  # pragma: no cover
    HAVE_PYTEST = False


@unittest.skipUnless(HAVE_PYTEST, "pytest is not installed")
@unittest.skipUnless(NODE and MAIN.exists() and (REPO / "node_modules" / "tsx").exists(), "needs node and this repository's source with node_modules")
class PytestEntryTest(unittest.TestCase):
    def run_pytest(self, case_pattern: str) -> tuple[str, dict]:
        harness = f"{NODE} --import tsx {MAIN}"
        loader = f"{sys.executable} {HERE / 'refuse_all_loader.py'}"
        with tempfile.TemporaryDirectory() as tmp:
            test = Path(tmp) / "test_conformance.py"
            test.write_text(
                "import sys\n"
                f"sys.path.insert(0, {str(HERE.parent)!r})\n"
                "from moe_conformance_pytest import conformance_tests\n"
                f"test_moe = conformance_tests(loader={loader!r}, harness={harness!r}, args=['--cases', '40', '--case', {case_pattern!r}], cwd={str(REPO)!r})\n"
            )
            p = subprocess.run([sys.executable, "-m", "pytest", "-rA", "-v", "-p", "no:cacheprovider", str(test)], cwd=tmp, capture_output=True, text=True, timeout=600)
        counts = {k: int(v) for v, k in re.findall(r"(\d+) (passed|failed|skipped)", p.stdout.splitlines()[-1] if p.stdout else "")}
        return p.stdout + p.stderr, counts

    def test_one_test_per_case_with_each_verdict(self):
        out, counts = self.run_pytest("moe:refuse:*")
        # Every refusal case is a test: passed where the model type is declared, skipped (not declared) elsewhere.
        self.assertGreater(counts.get("passed", 0) + counts.get("skipped", 0), 0, out)
        self.assertEqual(counts.get("failed", 0), 0, out)
        self.assertRegex(out, r"test_moe\[moe:refuse:model=")
        if counts.get("skipped"):
            self.assertIn("not declared: model type", out)
        out, counts = self.run_pytest("moe:load:model=mixtral;*")
        self.assertGreater(counts.get("failed", 0), 0, out)
        self.assertIn("worker refused: RuntimeError: refusing", out)
        self.assertRegex(out, r"replay: .*check --loader .* --worker --case")


if __name__ == "__main__":
    unittest.main()
