"""Result rows and atomic writes, without Ray."""

from __future__ import annotations

import pytest

from orchestrator.results.atomic import write_atomic
from orchestrator.results.rows import config_columns, error_text, stop_reason


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


def test_the_error_column_holds_no_terminal_colour_codes(tmp_path):
    """Tune's error file as Ray writes it (its task name in cyan, a hyperlink): the live
    sink and the rebuild both keep the text, not the escape sequences."""
    from types import SimpleNamespace

    from orchestrator.results.sink import _error_text

    raw = ("Failure # 1 (occurred at 2026-12-01_10-00-00)\n\x1b[36mray::ImplicitFunc.train()"
           "\x1b[39m (pid=4242, ip=127.0.0.1, actor_id=ab)\n  File \"x.py\", line 3\n"
           "\x1b[1;31mValueError\x1b[0m: trial.report: epoch 2 reported after epoch 3 "
           "\x1b]8;;file:///x.py\x1b\\x.py\x1b]8;;\x1b\\\n")
    plain = ("Failure # 1 (occurred at 2026-12-01_10-00-00)\nray::ImplicitFunc.train() "
             "(pid=4242, ip=127.0.0.1, actor_id=ab)\n  File \"x.py\", line 3\nValueError: "
             "trial.report: epoch 2 reported after epoch 3 x.py")
    assert error_text(raw) == plain
    (tmp_path / "error.txt").write_text(raw)
    assert _error_text(SimpleNamespace(error_file=str(tmp_path / "error.txt"))) == plain
    assert error_text("x" * 5000 + "\x1b[0m") == "x" * 4000
    assert error_text("\x1b[0m \n") is None


def test_config_columns_cover_every_train_setting_with_one_type_each():
    columns = config_columns({"train": {"optimizer": {"lr": 0.1},
                                        "schedule": {"milestones": [10, 15]}},
                              "seed": 3})
    assert columns == {"config.optimizer.lr": 0.1, "config.schedule.milestones": "[10, 15]"}


def _written_sweep(tmp_path, metric: str = "val_acc"):
    """A finished sweep's folder as the library writes it (no Ray): sweep.json and both
    tables, two trials of three epochs."""
    from orchestrator.results import schema
    from orchestrator.results.provenance import begin_segment, end_segment
    from orchestrator.results.tables import frames, write_history, write_trials
    from orchestrator.spec import spec_from_mapping
    from tests.helpers import tiny_spec

    spec = spec_from_mapping(tiny_spec(tmp_path, name="moved", metric=metric))
    results = tmp_path / "sweeps" / "moved" / schema.RESULTS_DIR
    begin_segment(results, spec.resolved(), "run")
    history = {(t, e): {"trial_id": t, "epoch": e, "train_loss": 1.0 / e,
                        "val_loss": (2.0 if t.endswith("1") else 1.1) / e,
                        "val_acc": 0.5 + e / 10}
               for t in ("t_00000", "t_00001") for e in (1, 2, 3)}
    trials, history_frame = frames(
        {t: {"trial_id": t, "status": "terminated", "stop_reason": "completed", "epochs": 3}
         for t in ("t_00000", "t_00001")}, history, metric, spec.mode)
    write_trials(trials, results / schema.TRIALS_FILE, metric)
    write_history(history_frame, results / schema.HISTORY_FILE)
    end_segment(results, spec.resolved(), status="finished", elapsed_s=1.0, trials_ended=2)
    return results


@pytest.mark.parametrize("metric, mode", [("val_acc", "max"), ("val_loss", "min")])
def test_reading_commands_work_on_intact_tables_whose_sweep_json_was_moved_aside(
        tmp_path, metric, mode):
    """README says to move an unreadable sweep.json aside: ls, export and report then
    read the tables, with one line saying what is unknown."""
    import pandas as pd

    from orchestrator.results import schema
    from tests.helpers import invoke

    results = _written_sweep(tmp_path, metric)
    (results / schema.SWEEP_FILE).rename(tmp_path / "sweep.json.bad")
    storage = str(tmp_path / "sweeps")
    warning = (f"warning: {results / schema.SWEEP_FILE} is missing: read from the tables "
               f"alone (metric {metric}, {mode}); the spec, its search space, the sweep's "
               "status and times are unknown")

    out = tmp_path / "trials.csv"
    exported = invoke("export", "moved", "--storage", storage, "-o", str(out))
    assert exported.exit_code == 0, exported.output
    assert exported.stderr.splitlines()[0] == warning
    assert list(pd.read_csv(out)["trial_id"]) == ["t_00000", "t_00001"]

    listed = invoke("ls", "--storage", storage)
    assert listed.exit_code == 0, listed.output
    assert "moved" in listed.stdout and "2 terminated" in listed.stdout
    assert "sweep.json is missing" in listed.stdout

    reported = invoke("report", "moved", "--storage", storage, "--out", str(tmp_path / "r"))
    assert reported.exit_code == 0, reported.output
    assert reported.stderr.splitlines()[0] == warning
    assert f"Top 2 of 2 trials by best_{metric}" in reported.stdout
    assert (tmp_path / "r" / "report.html").is_file()


def test_a_folder_with_neither_sweep_json_nor_tables_is_still_not_a_sweep(tmp_path):
    from tests.helpers import invoke

    (tmp_path / "sweeps" / "empty" / "results").mkdir(parents=True)
    result = invoke("export", "empty", "--storage", str(tmp_path / "sweeps"), "-o",
                    str(tmp_path / "x.csv"))
    assert result.exit_code == 2
    assert "is not a sweep folder" in result.stderr


@pytest.mark.parametrize("scores, mode", [([0.1, 0.5, 0.2, 0.9], "min"),
                                          ([0.5, 0.1, 0.9, 0.2], "max")])
def test_without_sweep_json_a_loops_own_metric_gets_its_mode_from_the_best_values(
        tmp_path, scores, mode):
    import pandas as pd

    from orchestrator.results.load import read_sweep
    from orchestrator.results.storage import as_location

    trials = pd.DataFrame({"trial_id": ["a", "b"], "best_epoch": [1, 1],
                           "best_score": [0.1, 0.2] if mode == "min" else [0.5, 0.9]})
    history = pd.DataFrame({"trial_id": ["a", "a", "b", "b"], "epoch": [1, 2, 1, 2],
                            "score": scores})
    sweep, warning = read_sweep(as_location(tmp_path / "mine"), trials, history)
    assert sweep["spec"]["metric"] == "score" and sweep["spec"]["mode"] == mode
    assert sweep["spec"]["name"] == "mine" and sweep["spec"]["train"]["epochs"] == 2
    assert f"(metric score, {mode})" in warning


def test_json_lines_export_keeps_every_float_exactly(tmp_path):
    """Small values (an update ratio of 1e-9, a vanishing gradient ratio of 1e-17) come
    back as written; NaN and infinities are null, strings and integers as they are."""
    import math

    import pandas as pd

    from orchestrator.results.export import export_table

    frame = pd.DataFrame({"trial_id": ["a_00000", "b_00001", "c_00002"], "epoch": [1, 2, 3],
                          "update_ratio": [1.2345678901234e-9, 9.289114677812904e-05, 0.5],
                          "grad_norm_ratio": [1.3e-17, math.nan, 2.0],
                          "grad_norm_max": [math.inf, 3.0, 1e300]})
    export_table(frame, tmp_path / "h.jsonl", "jsonl")
    back = pd.read_json(tmp_path / "h.jsonl", lines=True, dtype=False, precise_float=True)
    assert list(back["update_ratio"]) == list(frame["update_ratio"])
    assert back["grad_norm_ratio"][0] == 1.3e-17 and back["grad_norm_ratio"].isna()[1]
    assert back["grad_norm_max"].isna()[0] and list(back["grad_norm_max"][1:]) == [3.0, 1e300]
    assert list(back["trial_id"]) == list(frame["trial_id"])
    assert list(back["epoch"]) == [1, 2, 3]
