"""The chaos run at CI size (bench/chaos/run.py --quick), on its own PostgreSQL and Redis.

VM lifecycles go through the HTTP API while workers are SIGKILLed, 20 % of simulator
calls fail, and Redis and PostgreSQL are restarted; then every invariant must hold.
"""

import json
import subprocess
import sys

import pytest

from bench.stack import ROOT

pytestmark = pytest.mark.worker


def test_chaos_run_keeps_every_invariant(tmp_path):
    # Given the CI-sized chaos run (it starts and stops its own stack)
    figures = tmp_path / "chaos.json"

    # When it drives VM lifecycles through faults
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "chaos" / "run.py"), "--quick", "--json", str(figures)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=280,
    )

    # Then it passes, and the faults really happened
    assert run.returncode == 0, run.stdout[-8000:] + run.stderr[-4000:]
    result = json.loads(figures.read_text())
    values = {figure["label"]: figure["value"] for figure in result["figures"]}
    assert values["operations accepted through the API"] >= 60
    assert values["worker SIGKILLs"] >= 3
    notes = " ".join(result["notes"])
    assert "restarts of redis, postgres" in notes
    assert "FAIL" not in notes
