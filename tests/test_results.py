"""Result rows and atomic writes, without Ray."""

from __future__ import annotations

import pytest

from orchestrator.results.atomic import write_atomic
from orchestrator.results.rows import config_columns, stop_reason


def test_a_failed_write_leaves_the_old_file_whole(tmp_path):
    path = tmp_path / "results" / "trials.parquet"
    write_atomic(path, lambda tmp: tmp.write_text("old rows"))

    def crash_midway(tmp):
        tmp.write_text("half of the new")
        raise KeyboardInterrupt  # the process is stopped while writing

    with pytest.raises(KeyboardInterrupt):
        write_atomic(path, crash_midway)
    assert path.read_text() == "old rows"
    assert [p.name for p in path.parent.iterdir()] == ["trials.parquet"]  # no temp left


@pytest.mark.parametrize("status, last, budget, expected", [
    ("error", {"stop_reason": "completed"}, False, "error"),
    ("terminated", {"stop_reason": "early_stopping"}, False, "early_stopping"),
    ("terminated", {"stop_reason": None}, False, "scheduler"),
    ("terminated", {"stop_reason": None}, True, "budget"),
    ("pending", None, True, "budget"),
    ("paused", {"stop_reason": None}, False, None),
    ("running", {"stop_reason": None}, False, None),
])
def test_stop_reason(status, last, budget, expected):
    assert stop_reason(status, last, budget) == expected


def test_config_columns_cover_every_train_setting_with_one_type_each():
    columns = config_columns({"train": {"optimizer": {"lr": 0.1},
                                        "schedule": {"milestones": [10, 15]}},
                              "seed": 3})
    assert columns == {"config.optimizer.lr": 0.1, "config.schedule.milestones": "[10, 15]"}
