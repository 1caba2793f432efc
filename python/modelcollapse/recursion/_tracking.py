"""Experiment-tracking callbacks for :func:`~modelcollapse.recursion.run_retraining`: log the
run's configuration once and every round's metrics with ``step = round`` to TensorBoard or
MLflow (docs/retraining.md, section "Tracking runs").

Both backends are optional dependencies (the extra ``modelcollapse[tracking]``), imported
through :func:`modelcollapse._optional.require` when a callback is built, so the core imports
without them and a missing one fails with one line saying what to install.
"""
from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .._checkpoint import dumps_strict
from .._optional import require
from ._context import RoundContext


def _flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"learner": {"name": "gmm"}}`` -> ``{"learner.name": "gmm"}`` (one parameter per leaf)."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def _check_context(ctx: Any) -> RoundContext:
    if not isinstance(ctx, RoundContext):
        raise TypeError(f"a tracking callback is called with a RoundContext (by run_retraining), got {type(ctx).__name__}")
    return ctx


class _Tracker:
    """One tracked run per callback object: the first call logs the configuration, every call
    the round's metrics; ``close()`` (or leaving a ``with`` block) ends the run."""

    _closed = False
    _started = False

    def __call__(self, ctx: RoundContext) -> None:
        ctx = _check_context(ctx)
        if self._closed:
            raise RuntimeError(f"{type(self).__name__} was closed; make a new one for a new run")
        if not self._started:
            self._start(ctx.config)
            self._started = True
        self._log(ctx.round, {k: float(v) for k, v in ctx.metrics.items()})

    def _start(self, config: dict[str, Any]) -> None:
        raise NotImplementedError

    def _log(self, step: int, metrics: dict[str, float]) -> None:
        raise NotImplementedError

    def _end(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """End the tracked run (idempotent)."""
        if self._started and not self._closed:
            self._end()
        self._closed = True

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class TensorBoardCallback(_Tracker):
    """Log a retraining run to TensorBoard event files in ``log_dir``.

    Each round's metrics become scalars ``<prefix><metric>`` at ``step = round``; the run's
    configuration is written once, as a text summary ``config`` (strict JSON) and as
    ``log_dir/config.json``. Needs the ``tensorboard`` package (``pip install
    'modelcollapse[tracking]'``), not torch or TensorFlow. View with ``tensorboard --logdir``.

    Parameters
    ----------
    log_dir
        Folder for the event file (created if missing). Use one folder per run.
    prefix
        Prepended to every metric tag (e.g. ``"retraining/"``).

    Examples
    --------
    >>> with TensorBoardCallback("runs/gmm-lambda1") as cb:          # doctest: +SKIP
    ...     run_retraining(learner, real, 10, synthetic_ratio=1.0, callback=cb)
    """

    def __init__(self, log_dir: str | Path, prefix: str = "") -> None:
        if not isinstance(log_dir, (str, Path)):
            raise TypeError(f"log_dir must be a str or Path, got {type(log_dir).__name__}")
        if not isinstance(prefix, str):
            raise TypeError(f"prefix must be a string, got {type(prefix).__name__}")
        require("tensorboard", "TensorBoardCallback")
        self.log_dir = Path(log_dir)
        self.prefix = prefix
        self._writer: Any = None

    def _event(self, step: int, summary: Any) -> None:
        from tensorboard.compat.proto import event_pb2

        self._writer.add_event(event_pb2.Event(wall_time=time.time(), step=int(step), summary=summary))

    def _start(self, config: dict[str, Any]) -> None:
        from tensorboard.compat.proto import summary_pb2, tensor_pb2, tensor_shape_pb2
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._writer = EventFileWriter(str(self.log_dir))
        text = dumps_strict(config, indent=1, sort_keys=True)
        (self.log_dir / "config.json").write_text(text, encoding="utf-8")
        # the text plugin's summary (what TensorFlow's tf.summary.text writes), built without TensorFlow
        meta = summary_pb2.SummaryMetadata(plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="text"))
        tensor = tensor_pb2.TensorProto(dtype="DT_STRING", string_val=[text.encode("utf-8")],
                                        tensor_shape=tensor_shape_pb2.TensorShapeProto(
                                            dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=1)]))
        self._event(0, summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag="config", metadata=meta,
                                                                            tensor=tensor)]))

    def _log(self, step: int, metrics: dict[str, float]) -> None:
        from tensorboard.compat.proto import summary_pb2

        values = [summary_pb2.Summary.Value(tag=f"{self.prefix}{k}", simple_value=v) for k, v in metrics.items()]
        self._event(step, summary_pb2.Summary(value=values))
        self._writer.flush()

    def _end(self) -> None:
        self._writer.close()


class MLflowCallback(_Tracker):
    """Log a retraining run to MLflow: the configuration once (flattened into parameters
    ``learner.name``, ``workflow``, ... and as the artifact ``config.json``), each round's
    metrics with ``step = round``.

    It uses an ``MlflowClient`` of its own (no global active run), so it does not interfere
    with the caller's MLflow runs. Needs ``mlflow`` (``pip install 'modelcollapse[tracking]'``).

    Parameters
    ----------
    tracking_uri
        Where runs are stored, e.g. ``"sqlite:///mlflow.db"`` (a local database file) or
        ``"http://host:5000"``. None (default): MLflow's own choice, the environment variable
        ``MLFLOW_TRACKING_URI``, else ``sqlite:///mlflow.db`` in the working directory (MLflow 3;
        ``./mlruns`` in MLflow 2). A ``file:`` store is refused by MLflow >= 3.7 unless
        ``MLFLOW_ALLOW_FILE_STORE=true`` is set (docs/retraining.md, section "Tracking runs").
    experiment
        MLflow experiment name (created if missing).
    run_name
        Name of the MLflow run (default: MLflow's generated name).
    """

    def __init__(self, tracking_uri: str | None = None, experiment: str = "modelcollapse",
                 run_name: str | None = None) -> None:
        if tracking_uri is not None and (not isinstance(tracking_uri, str) or not tracking_uri):
            raise TypeError(f"tracking_uri must be a non-empty string or None, got {tracking_uri!r}")
        if not isinstance(experiment, str) or not experiment:
            raise TypeError(f"experiment must be a non-empty string, got {experiment!r}")
        if run_name is not None and not isinstance(run_name, str):
            raise TypeError(f"run_name must be a string or None, got {type(run_name).__name__}")
        self._mlflow = require("mlflow", "MLflowCallback")
        self.tracking_uri = tracking_uri
        self.experiment = experiment
        self.run_name = run_name
        self.run_id: str | None = None
        self._client: Any = None

    def _start(self, config: dict[str, Any]) -> None:
        from mlflow.tracking import MlflowClient

        client = self._client = MlflowClient(tracking_uri=self.tracking_uri)
        exp = client.get_experiment_by_name(self.experiment)
        exp_id = exp.experiment_id if exp is not None else client.create_experiment(self.experiment)
        self.run_id = client.create_run(exp_id, run_name=self.run_name).info.run_id
        for key, value in sorted(_flatten(config).items()):
            client.log_param(self.run_id, key, "None" if value is None else str(value))
        client.log_text(self.run_id, dumps_strict(config, indent=1, sort_keys=True), "config.json")

    def _log(self, step: int, metrics: dict[str, float]) -> None:
        stamp = int(time.time() * 1000)
        for key, value in metrics.items():
            self._client.log_metric(self.run_id, key, value, timestamp=stamp, step=int(step))

    def _end(self) -> None:
        self._client.set_terminated(self.run_id)
