"""The named states (orchestrator/states.py) are what the tables, files and messages held
as bare strings before: the same values, and the bare value wherever one is written."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq

from orchestrator.states import Label, StopReason, SweepStatus, TrialStatus


def test_values_are_the_tables_words():
    assert [s.value for s in TrialStatus] == ["pending", "running", "paused", "terminated",
                                             "error"]
    assert [s.value for s in SweepStatus] == ["running", "finished", "interrupted"]
    assert [s.value for s in StopReason] == ["completed", "scheduler", "early_stopping",
                                            "diverged", "error", "budget"]
    assert [s.value for s in Label] == ["healthy", "diverged", "lr_too_high", "lr_too_low",
                                       "overfitting", "underfitting", "too_short",
                                       "vanishing_gradients", "exploding_gradients"]


def test_a_state_reads_as_its_bare_value_everywhere(tmp_path):
    status = TrialStatus.ERROR
    assert f"{status}" == str(status) == f"{status:<6}".strip() == "error"
    assert status == "error" and "error" in {status} and {status: 1}["error"] == 1
    assert json.dumps({"status": status}) == '{"status": "error"}'
    table = pa.table({"status": [status, TrialStatus.TERMINATED],
                      "stop_reason": [StopReason.ERROR, StopReason.COMPLETED]})
    assert table.schema.field("status").type == pa.string()
    pq.write_table(table, tmp_path / "t.parquet")
    back = pq.read_table(tmp_path / "t.parquet").to_pylist()
    assert back == [{"status": "error", "stop_reason": "error"},
                    {"status": "terminated", "stop_reason": "completed"}]
    assert type(back[0]["status"]) is str


def test_the_diagnosis_labels_and_stop_reasons_come_from_the_states():
    from orchestrator.diagnosis import LABELS
    from orchestrator.results import schema

    assert LABELS == tuple(Label) and schema.STOP_REASONS == tuple(StopReason)
