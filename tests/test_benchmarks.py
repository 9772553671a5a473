"""Benchmarks cannot rot: every script under benchmarks/ runs in its quick mode, in fresh processes.

One ``benchmarks/run.py --quick`` runs every script in its own process (small synthetic data,
temporary stores); each test checks one script's exit status and the header line of its table.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import harness  # noqa: E402
import stages  # noqa: E402

#: The first line of each script's table, as a reader sees it.
HEADERS = {
    "harness": "| competing processes | cores | load (1 min) | loop M it/s | relative speed |",
    "scale": "| lines | customers | read | clean | rfm | behaviour | core s | core cpu s | peak MiB | load |",
    "synthetic": "| lines | kind | rows | seconds (median) | min | max | CPU seconds | peak MiB |",
    "features": "| set | customers | columns | cold s | cached s | peak RSS MB | added MB |",
    "stages": "| run | load | features | segment | prediction | dynamics_stage | recommend | figures "
              "| whole command s | peak MB |",
    "baseline": "| competing processes | pairs | segmentlab s | plain s | ratio (median [range]) "
                "| segmentlab MB | plain MB | load |",
    "tuning": "| competing processes | evaluation.n_jobs | runs | trials | trials/min | overhead % "
              "| with summary % | summary s | estimator s/trial | K-means fit s/trial | load |",
    # outofcore.py prints a fixed-width table (its own format), not markdown.
    "outofcore": "       lines  customers read+clean        rfm  behaviour    summary  total s   cpu s"
                 "  peak MiB      load engine",
}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("benchmarks") / "all.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick", "--json", str(out)]
    proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    sections = dict(re.findall(r"^## (\w+)\.py --quick\n(.*?)(?=^## |\Z)", proc.stdout, re.M | re.S))
    return proc, sections, json.loads(out.read_text()) if out.exists() else None


def test_every_script_is_run():
    import importlib.util

    # make_lines.py writes a file for outofcore.py (which its quick mode runs); it prints no table.
    scripts = {p.stem for p in (ROOT / "benchmarks").glob("*.py")} - {"run", "make_lines"}
    spec = importlib.util.spec_from_file_location("benchmarks_run", ROOT / "benchmarks" / "run.py")
    run = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run)
    assert set(run.SCRIPTS) == scripts == set(HEADERS)


@pytest.mark.parametrize("name", sorted(HEADERS))
def test_quick_mode_exits_0_and_prints_its_table(quick_run, name):
    proc, sections, _ = quick_run
    assert name in sections, f"{name}.py did not run:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    assert f"{name}.py: exit status 0" in sections[name], sections[name][-2000:] + proc.stderr[-3000:]
    assert HEADERS[name] in sections[name].splitlines(), sections[name]


def test_run_py_exits_0_and_writes_every_result(quick_run):
    proc, _, results = quick_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert {name: r["exit_status"] for name, r in results["scripts"].items()} == dict.fromkeys(HEADERS, 0)
    baseline = results["scripts"]["baseline"]["result"]
    assert [row["competing"] for row in baseline] == [0, 1]
    assert all(row["ratio_median"] > 0 and row["segmentlab_mb"] > 0 for row in baseline)


def test_competing_processes_run_inside_the_block_and_are_killed_after():
    with harness.competing(1) as pids:
        assert len(pids) == 1
        os.kill(pids[0], 0)  # alive: raises if not
    with pytest.raises(ProcessLookupError):
        os.kill(pids[0], 0)


def test_a_failing_command_raises_with_its_last_lines():
    with pytest.raises(RuntimeError, match="exited with 3:\nboom"):
        harness.fresh_process([sys.executable, "-c", "import sys; sys.stderr.write('boom'); sys.exit(3)"])


def test_stage_seconds_are_read_from_the_console_summary():
    out = "cluster:   silhouette 0.38\nseconds:   load 2.1   features 0.2   segment 3.6   figures 1.0\n"
    assert stages.stage_seconds(out) == {"load": 2.1, "features": 0.2, "segment": 3.6, "figures": 1.0}
    with pytest.raises(RuntimeError, match="no 'seconds:' line"):
        stages.stage_seconds("customers 4,333\n")
