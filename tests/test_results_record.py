"""results.Record: the frozen base of returned results (field, key and table access)."""
import dataclasses

import numpy as np
import pytest

from modelcollapse.results import Record


@dataclasses.dataclass(frozen=True)
class _Run(Record):
    t: np.ndarray
    Q: np.ndarray
    b: np.ndarray
    d: int
    label: str = "sim"


def _run():
    return _Run(t=np.array([0.0, 0.5, 1.0]), Q=np.arange(12.0).reshape(3, 2, 2), b=np.array([0.1, 0.2, 0.3]), d=7)


def test_record_is_frozen_and_reads_like_a_dict():
    run = _run()
    with pytest.raises(dataclasses.FrozenInstanceError):
        run.d = 3
    assert run["d"] == 7 and "Q" in run and "nope" not in run
    assert run.keys() == ["t", "Q", "b", "d", "label"]
    with pytest.raises(KeyError, match="no field 'nope'"):
        run["nope"]


def test_to_frame_one_row_per_time_matrix_entries_as_columns():
    frame = _run().to_frame()
    assert list(frame.columns) == ["t", "Q[0,0]", "Q[0,1]", "Q[1,0]", "Q[1,1]", "b", "d", "label"]
    assert len(frame) == 3
    np.testing.assert_array_equal(frame["Q[1,0]"], [2.0, 6.0, 10.0])
    np.testing.assert_array_equal(frame["b"], [0.1, 0.2, 0.3])
    assert set(frame["d"]) == {7} and set(frame["label"]) == {"sim"}
