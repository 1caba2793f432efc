"""The collapse atlas (docs/atlas.md): the remedies proposed across the model-collapse
literature, set side by side on the same learners, data, metrics and training budgets, with
confidence intervals over seeds and, where one exists, the theoretical curve.

Private modules: ``_setup`` (configuration, data law, learners, remedies, metrics), ``_grid``
(the remedy x learner runs, their summary and the ranking), ``_theory`` (the theory overlays
and their chains), ``_figures``, ``_experiment`` (``modelcollapse run atlas``).
"""
from __future__ import annotations

from ._experiment import COLUMNS, run
from ._setup import LEARNERS, PRESETS, REMEDIES, AtlasConfig, data_law

__all__ = ["COLUMNS", "LEARNERS", "PRESETS", "REMEDIES", "AtlasConfig", "data_law", "run"]
