"""Experiments D1-D5 of the high-dimensional DAE (Cui et al.; docs/dae.md, "Experiments").

One module per experiment: D1 ``_training``, D2 ``_generation``, D3 ``_digits``,
D4 ``_generations``, D5 ``_scale``; each registers itself with the CLI on import.
"""
from __future__ import annotations

from ._digits import DigitsConfig, run_digits
from ._generation import GenerationConfig, run_generation
from ._generations import GenerationsConfig, run_generations
from ._scale import ScaleConfig, run_scale
from ._training import TrainingConfig, run_training

__all__ = ["DigitsConfig", "GenerationConfig", "GenerationsConfig", "ScaleConfig", "TrainingConfig", "run_digits",
           "run_generation", "run_generations", "run_scale", "run_training"]
