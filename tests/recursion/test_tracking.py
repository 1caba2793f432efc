"""Experiment-tracking callbacks of the retraining loop (docs/retraining.md, section "Tracking
runs"): the configuration once, every round's metrics at step = round; optional dependencies."""
from __future__ import annotations

import json
import subprocess
import sys
import types

import numpy as np
import pytest

from modelcollapse.recursion import MLflowCallback, RoundContext, TensorBoardCallback, run_retraining
from modelcollapse.retraining import GaussianLearner


def _run(callback=None, rounds=3, seed=0):
    real = np.random.default_rng(seed).standard_normal((30, 2))
    return run_retraining(GaussianLearner(), real, rounds, synthetic_ratio=1.0, metrics=("std", "mean"), seed=seed,
                          progress=False, callback=callback)


def _expected(res):
    """{metric: {round: value}} from the result table."""
    out: dict[str, dict[int, float]] = {}
    for r in res.table.itertuples():
        out.setdefault(r.metric, {})[int(r.round)] = float(r.value)
    return out


def test_callback_context_carries_the_rounds_metrics_and_the_config():
    seen = []
    res = _run(lambda ctx: seen.append((ctx.round, dict(ctx.metrics), ctx.config)))
    assert [s[0] for s in seen] == [0, 1, 2, 3]
    got = {}
    for t, metrics, config in seen:
        assert config == res.config
        for k, v in metrics.items():
            got.setdefault(k, {})[t] = v
    assert got == _expected(res)


def test_tensorboard_logs_config_once_and_every_metric_at_step_round(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    with TensorBoardCallback(tmp_path / "tb", prefix="rt/") as cb:
        res = _run(cb)
    acc = EventAccumulator(str(tmp_path / "tb"))
    acc.Reload()
    expected = _expected(res)
    assert sorted(acc.Tags()["scalars"]) == sorted(f"rt/{k}" for k in expected)
    for key, per_round in expected.items():
        events = acc.Scalars(f"rt/{key}")
        assert [e.step for e in events] == sorted(per_round)
        # TensorBoard stores float32 scalars
        np.testing.assert_allclose([e.value for e in events], [per_round[t] for t in sorted(per_round)], rtol=1e-6)
    text = acc.Tensors("config")
    assert len(text) == 1 and text[0].step == 0
    assert json.loads(text[0].tensor_proto.string_val[0].decode()) == json.loads(
        (tmp_path / "tb" / "config.json").read_text())
    assert json.loads((tmp_path / "tb" / "config.json").read_text())["seed"] == res.config["seed"]
    with pytest.raises(RuntimeError, match="closed"):
        _run(cb, rounds=0)


class _FakeClient:
    """Records the MlflowClient calls the callback makes (mlflow is not in the test extra)."""

    calls: list = []

    def __init__(self, tracking_uri):
        self.calls.append(("init", tracking_uri))

    def get_experiment_by_name(self, name):
        return None

    def create_experiment(self, name):
        self.calls.append(("experiment", name))
        return "7"

    def create_run(self, experiment_id, run_name=None):
        self.calls.append(("run", experiment_id, run_name))
        return types.SimpleNamespace(info=types.SimpleNamespace(run_id="r1"))

    def log_param(self, run_id, key, value):
        self.calls.append(("param", key, value))

    def log_text(self, run_id, text, path):
        self.calls.append(("text", path, json.loads(text)))

    def log_metric(self, run_id, key, value, timestamp=None, step=None):
        self.calls.append(("metric", key, value, step))

    def set_terminated(self, run_id):
        self.calls.append(("end", run_id))


def test_mlflow_callback_logs_params_once_and_metrics_with_steps(monkeypatch):
    mlflow = types.ModuleType("mlflow")
    tracking = types.ModuleType("mlflow.tracking")
    tracking.MlflowClient = _FakeClient
    mlflow.tracking = tracking
    monkeypatch.setitem(sys.modules, "mlflow", mlflow)
    monkeypatch.setitem(sys.modules, "mlflow.tracking", tracking)
    _FakeClient.calls = []
    with MLflowCallback(experiment="exp", run_name="gauss") as cb:
        res = _run(cb)
    calls = _FakeClient.calls
    assert calls[:3] == [("init", None), ("experiment", "exp"), ("run", "7", "gauss")]
    params = {c[1]: c[2] for c in calls if c[0] == "param"}
    assert params["learner.name"] == "gaussian" and params["workflow"] == "mix"
    assert params["seed"] == "0" and params["synthetic_ratio"] == "1.0"
    assert len([c for c in calls if c[0] == "param"]) == len(params)          # each parameter once
    assert [c[2] for c in calls if c[0] == "text"] == [json.loads(json.dumps(res.config))]
    got: dict[str, dict[int, float]] = {}
    for _, key, value, step in (c for c in calls if c[0] == "metric"):
        assert step not in got.get(key, {})
        got.setdefault(key, {})[step] = value
    assert got == _expected(res)
    assert calls[-1] == ("end", "r1")


@pytest.mark.parametrize("store", ["sqlite", "file"])
def test_real_mlflow_store(tmp_path, monkeypatch, store):
    """Against a real MLflow (skipped where it is not installed): every parameter of the flattened
    configuration, each metric's full history (step = round, the float64 values of the result
    table) and the config artifact read back with MlflowClient, from a local database and from a
    file store (which MLflow >= 3.7 refuses unless MLFLOW_ALLOW_FILE_STORE is set). Kills: a
    metric logged at the wrong step, a parameter dropped, the configuration not logged."""
    mlflow = pytest.importorskip("mlflow")
    from modelcollapse.recursion._tracking import _flatten

    monkeypatch.chdir(tmp_path)                         # the database store's artifacts go to ./mlruns
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    uri = f"sqlite:///{tmp_path}/mlflow.db" if store == "sqlite" else f"file:{tmp_path}/mlruns"
    with MLflowCallback(tracking_uri=uri, experiment="e", run_name="gauss") as cb:
        res = _run(cb)
    client = mlflow.tracking.MlflowClient(uri)
    run = client.get_run(cb.run_id)
    assert run.info.run_name == "gauss" and run.info.status == "FINISHED"
    assert run.data.params == {k: "None" if v is None else str(v) for k, v in _flatten(res.config).items()}
    for key, per_round in _expected(res).items():
        history = sorted(client.get_metric_history(cb.run_id, key), key=lambda m: m.step)
        assert [(m.step, m.value) for m in history] == sorted(per_round.items())
    path = client.download_artifacts(cb.run_id, "config.json", str(tmp_path))
    assert json.loads(open(path).read()) == json.loads(json.dumps(res.config))


@pytest.mark.parametrize("cls, module", [(TensorBoardCallback, "tensorboard"), (MLflowCallback, "mlflow")])
def test_missing_backend_is_one_line_naming_the_extra(monkeypatch, tmp_path, cls, module):
    monkeypatch.setitem(sys.modules, module, None)      # makes `import module` raise ImportError
    with pytest.raises(ImportError) as err:
        cls(tmp_path) if cls is TensorBoardCallback else cls()
    assert "modelcollapse[tracking]" in str(err.value) and module in str(err.value)
    assert "\n" not in str(err.value)


def test_core_imports_without_the_tracking_backends():
    code = ("import sys; sys.modules['tensorboard'] = None; sys.modules['mlflow'] = None\n"
            "import modelcollapse.recursion, modelcollapse.retraining\n"
            "assert modelcollapse.retraining.TensorBoardCallback is modelcollapse.recursion.TensorBoardCallback")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_bad_arguments():
    with pytest.raises(TypeError, match="log_dir"):
        TensorBoardCallback(3)
    with pytest.raises(TypeError, match="experiment"):
        MLflowCallback(experiment="")
    pytest.importorskip("tensorboard")
    with pytest.raises(TypeError, match="RoundContext"):
        TensorBoardCallback("unused")({"round": 0})
    assert RoundContext.__dataclass_fields__["metrics"].default_factory() == {}
