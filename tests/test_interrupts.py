"""Ctrl-C stops every long compiled loop within a fraction of a second.

Each test starts a long call in a child process, sends SIGINT once the call is running and
checks that the child gets KeyboardInterrupt soon after. The calls would run for several
seconds (some for minutes) if the interrupt were not noticed; the bound of 0.5 s is
generous for a loaded machine (the kernels poll every 20 ms).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import modelcollapse

# The children import the same modelcollapse as this process (the installed package in CI,
# the source tree with its built core in development), not whatever the tree holds.
PYTHON_DIR = Path(modelcollapse.__file__).resolve().parents[1]
# SIGINT is sent this long after the child says it is about to call: enough for the call to
# be inside its compiled loop (the setup before the loop takes milliseconds).
START_DELAY = 0.4
MAX_LATENCY = 0.5

CHILD = """
import signal, sys, time
signal.signal(signal.SIGINT, signal.default_int_handler)  # even if the parent ignores SIGINT
import numpy as np
import modelcollapse as mc
{setup}
print("ready", flush=True)
try:
    {call}
except KeyboardInterrupt:
    print("interrupted", time.monotonic(), flush=True)
    sys.exit(0)
print("finished", time.monotonic(), flush=True)
sys.exit(3)
"""

CASES = {
    # one parallel loop per time step, each far shorter than the poll interval
    "sample_reverse_mixture": (
        "gm = mc.GaussianMixture([0.5, 0.5], [[-2.0], [2.0]], [0.3, 0.3])",
        "mc.sample_reverse(gm, 20000, steps=20000, threads=1, seed=0)"),
    "sample_reverse_empirical": (
        "es = mc.EmpiricalScore(np.random.default_rng(0).normal(size=(200, 2)))",
        "mc.sample_reverse(es, 200, steps=50000, threads=1, seed=0)"),
    # two chains: one work chunk that runs the whole call
    "simulate_chains": (
        "from modelcollapse.retraining.gaussian import simulate_chains",
        "simulate_chains(np.zeros(2), np.eye(2), 1000, 20000, 2, synthetic_ratio=1.0, seed=0, threads=1)"),
    # the sorts of wasserstein(method="1d"), formerly without any polling (the kernel is
    # called directly: the public function spends its first second validating the input)
    "wasserstein_1d": (
        "rng = np.random.default_rng(0); x = rng.normal(size=8_000_000); y = rng.normal(size=8_000_001)",
        "mc._core.wasserstein_1d_pow(x, y, 1.0)"),
    # the exact grid KDE on one thread: 16 parts, each about 2 s long, run on the calling
    # thread, which polls through the parts' stop checks (parallel.hpp, StopToken)
    "kde_exact_grid": (
        "x = np.random.default_rng(0).normal(size=(3_000_000, 2)); w = np.full(len(x), 1 / 3e6)",
        "mc._core.kde_exact_grid(x, w, np.eye(2) * 0.01, [(-4.0, 0.053, 150), (-4.0, 0.053, 150)], 1)"),
    "dae_train": (
        "tg = mc.dae.isotropic_mixture(np.ones((1, 100)) / 10.0, 1.0)",
        "mc.dae.train(tg, r=2, n_steps=2_000_000, record_every=2_000_000, threads=1)"),
}


def _run_and_interrupt(setup: str, call: str) -> tuple[str, float]:
    env = dict(os.environ, PYTHONPATH=str(PYTHON_DIR) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    code = CHILD.format(setup=setup, call=call)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    try:
        line = proc.stdout.readline()
        assert line.strip() == "ready", f"child failed before the call: {line!r} {proc.stderr.read()}"
        time.sleep(START_DELAY)
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    words = out.split()
    assert proc.returncode == 0 and words[:1] == ["interrupted"], (
        f"no KeyboardInterrupt (exit {proc.returncode}): {out!r} {err[-2000:]!r}")
    return out, float(words[1]) - sent


@pytest.mark.parametrize("case", sorted(CASES))
def test_ctrl_c_stops_compiled_loop(case):
    setup, call = CASES[case]
    _, latency = _run_and_interrupt(textwrap.dedent(setup), call)
    print(f"{case}: KeyboardInterrupt {latency * 1e3:.0f} ms after SIGINT")
    assert latency < MAX_LATENCY, f"{case}: KeyboardInterrupt {latency:.3f} s after SIGINT"
