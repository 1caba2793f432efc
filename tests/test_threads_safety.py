"""Thread counts and sizes that reach the compiled core: no abort, a clear error instead.

When the system refuses to start worker threads (here: an address-space limit), a compiled
loop runs on the threads that did start or raises; it never ends the process with
std::terminate (exit 134). The core itself also refuses thread counts outside [0, 256] and
Hermite bases that cannot fit in memory, whoever calls it.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import modelcollapse
from modelcollapse import _core

# The children import the same modelcollapse as this process (the installed package in CI,
# the source tree with its built core in development), not whatever the tree holds.
PYTHON_DIR = Path(modelcollapse.__file__).resolve().parents[1]

# The limit leaves the child `slack` MiB of address space above what it uses after the
# imports: far less than 256 thread stacks (8 MiB each by default), enough for the work.
CHILD = """
import resource, sys
import numpy as np
import modelcollapse as mc
x = np.random.default_rng(0).normal(size=(500, 2))
y = np.random.default_rng(1).normal(size=(20000, 2))
model = {model}
def vm_size():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize"):
                return int(line.split()[1]) * 1024
limit = vm_size() + {slack} * 2**20
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
try:
    out = {call}
    print("ok", bool(np.all(np.isfinite(out))))
except (RuntimeError, MemoryError) as exc:
    print("error", type(exc).__name__, exc)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc and RLIMIT_AS")
@pytest.mark.parametrize("model, call", [
    ("mc.EmpiricalScore(x)", "model.score(y, 0.1, threads=256)"),
    ("mc.GaussianMixture([0.5, 0.5], [[-2.0, 0.0], [2.0, 0.0]], [0.3, 0.3])",
     "mc.sample_reverse(model, 20000, steps=3, threads=256, seed=0).samples"),
])
def test_thread_start_failure_is_not_an_abort(model, call):
    env = dict(os.environ, PYTHONPATH=str(PYTHON_DIR) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    code = CHILD.format(model=model, call=call, slack=300)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, f"exit {proc.returncode}: {proc.stderr[-2000:]}"
    words = proc.stdout.split()
    # either it ran on the threads that could start (finite results) or it said why it could not
    assert words[:2] == ["ok", "True"] or words[:1] == ["error"], proc.stdout
    if words[:1] == ["error"]:
        assert len(proc.stdout.strip().splitlines()) == 1


@pytest.mark.parametrize("threads", [-1, 257, 2**31 - 1])
def test_core_rejects_thread_counts_outside_range(threads):
    x = np.zeros((3, 2))
    core = _core.EmpiricalScoreCore(np.ones((4, 2)))
    with pytest.raises(ValueError, match="threads must be in"):
        core.score(x, 0.1, threads)
    with pytest.raises(ValueError, match="threads must be in"):
        _core.normals(0, 0, 0, 3, 2, 0, threads)


def test_results_do_not_depend_on_threads_near_the_cap():
    x = np.random.default_rng(2).normal(size=(3000, 2))
    core = _core.EmpiricalScoreCore(np.random.default_rng(3).normal(size=(50, 2)))
    assert np.array_equal(core.score(x, 0.1, 1), core.score(x, 0.1, 256))


def test_hermite_basis_too_large_is_refused_before_enumerating():
    # C(10**6 + 2, 2) multi-indices of 10**6 entries each: refused at once, not a hang, a
    # MemoryError or a stack overflow from the enumeration's recursion over coordinates
    with pytest.raises(ValueError, match="too large"):
        _core.hermite_multi_indices(10**6, 2)
    with pytest.raises(ValueError, match="too large"):
        _core.hermite_stein_system(np.zeros((1, 20000)), np.zeros((1, 20000)), np.zeros(20000),
                                   np.ones(20000), 1)
    assert _core.hermite_multi_indices(3, 2).shape == (9, 3)


def test_long_streams_are_split_without_changing_numbers():
    # streams longer than one fill piece (2**20 numbers) are filled in pieces so that Ctrl-C
    # is seen between them; the numbers around a piece boundary match a short direct fill
    n = 2**20 + 10
    for first in (0, 1):
        long_row = _core.normals(7, 0, 5, 1, n, first, 1)[0]
        around = _core.normals(7, 0, 5, 1, 8, first + 2**20 - 4, 1)[0]
        assert np.array_equal(long_row[2**20 - 4:2**20 + 4], around)
        u_long = _core.uniforms(7, 0, 5, 1, n, first)[0]
        u_around = _core.uniforms(7, 0, 5, 1, 8, first + 2**20 - 4)[0]
        assert np.array_equal(u_long[2**20 - 4:2**20 + 4], u_around)


@pytest.mark.parametrize("cov", ["iso", "diag"])
def test_sampler_does_not_depend_on_threads(cov):
    # n = 1003 is neither a multiple of the 64-sample chunk nor of the 8-sample tile: the
    # chunks, their padded tails and the final state and trajectory must come out bit for
    # bit the same whichever thread runs them. Kills: noise streams indexed by chunk-local
    # sample (i instead of begin + i), state shared between chunks, a thread-dependent tile.
    import modelcollapse as mc

    rng = np.random.default_rng(5)
    c = 0.3 + rng.random(6) if cov == "iso" else 0.3 + rng.random((6, 3))
    gm = mc.GaussianMixture(np.full(6, 1 / 6), 2 * rng.normal(size=(6, 3)), c)
    kw = dict(T=1.0, delta=0.01, steps=25, init="exact", seed=11, trajectory_times=[1.0, 0.5, 0.01])
    ref = mc.sample_reverse(gm, 1003, threads=1, **kw)
    for threads in (2, 3, 7):
        out = mc.sample_reverse(gm, 1003, threads=threads, **kw)
        assert np.array_equal(ref.samples, out.samples)
        assert np.array_equal(ref.trajectory, out.trajectory)


def test_one_worker_runs_on_the_calling_thread():
    # Python always hands the core a Ctrl-C poll; with one worker (threads=1) the loop still
    # runs on the calling thread, which polls itself (tests/test_interrupts.py), instead of
    # starting a thread to work while it polls. More threads start workers, with the same bits.
    rng = np.random.default_rng(0)
    es = modelcollapse.EmpiricalScore(rng.normal(size=(300, 2)))
    y = rng.normal(size=(4000, 2))
    before = _core.workers_started()
    one = es.score(y, 0.1, threads=1)
    grid = _core.kde_exact_grid(y[:, :1].copy(), np.full(len(y), 1.0 / len(y)), np.eye(1) * 0.01,
                                [(-4.0, 0.01, 800)], 1)
    assert _core.workers_started() == before
    two = es.score(y, 0.1, threads=2)
    # the calling thread is one of the workers (parallel.hpp): the one loop of a call starts
    # threads - 1 threads (a thread start costs tens of microseconds a call)
    assert _core.workers_started() == before + 1
    three = es.score(y, 0.1, threads=3)
    assert _core.workers_started() == before + 3
    np.testing.assert_array_equal(one, two)
    np.testing.assert_array_equal(one, three)
    assert np.all(grid > 0)
