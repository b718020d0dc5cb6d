"""Reading a sweep: export, report (figures, HTML in a real browser), ls, and the
declared schema of the tables. These commands read files only: no Ray. The sweeps they
read are real ones (slow); their bad-input messages are checked in-process."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pandas.testing as pdt
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from orchestrator.engine.run import run_sweep
from orchestrator.results import schema
from orchestrator.spec.model import spec_from_mapping
from tests.faults import ended_at_exit, ended_trials, start_sweep, wait_for
from tests.helpers import invoke, slow_spec, sweep_cli, tiny_spec, write_spec

SPACE = {"optimizer.lr": {"loguniform": [0.003, 0.5]}, "batch_size": {"choice": [16, 32, 64]},
         "model.depth": {"randint": [1, 2]}}


@pytest.fixture(scope="module")
def storage(tmp_path_factory, ray_address) -> Path:
    """A storage holding two finished sweeps with different search spaces and schedulers."""
    tmp = tmp_path_factory.mktemp("analysis")
    train = {**tiny_spec(tmp)["train"], "epochs": 6}
    run_sweep(spec_from_mapping(tiny_spec(
        tmp, name="asha", num_samples=10, search_space=SPACE, train=train,
        scheduler={"name": "asha", "grace_period": 1, "reduction_factor": 2})))
    run_sweep(spec_from_mapping(tiny_spec(
        tmp, name="grid", num_samples=1, searcher={"name": "grid"},
        search_space={"schedule.name": {"grid": ["step", "cosine"]}})))
    return tmp / "sweeps"


def not_blank(png: Path) -> bool:
    import matplotlib.image as mpimg

    pixels = mpimg.imread(png)
    return png.stat().st_size > 5000 and float(np.std(pixels)) > 0.02


CHARTS = ["learning_curves", "signals", "metric_vs_settings", "parallel_coordinates", "lr_curves",
          "importance"]


def fetches(page: str) -> list[str]:
    """What the page's markup would load from elsewhere: a src or href on the network, a
    script or style sheet from a file, a CSS import. The inline scripts' own text is left
    out (plotly.js holds such strings, for features the page does not use)."""
    markup = re.sub(r"(<script[^>]*>).*?</script>", r"\1</script>", page, flags=re.S)
    return (re.findall(r"""(?:src|href)\s*=\s*["']?(?:https?:|//)[^"'\s>]*""", markup)
            + re.findall(r"<script[^>]*\bsrc\s*=[^>]*>|<link\b[^>]*>", markup)
            + re.findall(r"@import|url\(\s*['\"]?(?:https?:|//)", markup))


@pytest.mark.slow
def test_report_prints_the_summary_and_writes_one_interactive_html(storage, tmp_path):
    from orchestrator.analysis.charts import plotly_js

    out = tmp_path / "report"
    result = sweep_cli("report", "asha", "--storage", str(storage), "--out", str(out),
                       "--top", "5")
    assert result.returncode == 0, result.stderr
    assert "Top 5 of 10 trials by best_val_acc" in result.stdout
    assert re.search(r"early termination saved \d+% of the compute \(\d+ of 60 epochs run",
                     result.stdout), result.stdout
    for heading in ("trials by status", "trials by stop_reason", "trials by diagnosis",
                    "compute by stop_reason", "compute by node"):
        assert heading in result.stdout
    assert [p.name for p in out.iterdir()] == ["report.html"]  # no PNG in this format
    page = (out / "report.html").read_text()
    for name in CHARTS:
        assert f'id="chart-{name}"' in page, name
    assert page.count(plotly_js()[:5000]) == 1  # plotly.js inline, once for every chart
    assert "Leaderboard" in page and "early termination saved" in page
    assert "Resolved spec" in page and "grace_period: 1" in page
    assert fetches(page) == []


@pytest.mark.slow
def test_report_as_png_writes_the_figures_and_a_page_without_script(storage, tmp_path):
    out = tmp_path / "report"
    result = sweep_cli("report", "asha", "--storage", str(storage), "--out", str(out),
                       "--format", "png")
    assert result.returncode == 0, result.stderr
    assert f"figures: 6 PNG files in {out}" in result.stdout
    for name in CHARTS:
        assert not_blank(out / f"{name}.png"), name
    page = (out / "report.html").read_text()
    assert page.count('src="data:image/png;base64,') == len(CHARTS)
    assert "<script" not in page and fetches(page) == []


@pytest.mark.slow
def test_report_of_a_tiny_sweep_says_what_it_did_not_draw(storage, tmp_path):
    result = sweep_cli("report", str(storage / "grid"), "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    page = (tmp_path / "report.html").read_text()
    assert "Not drawn:" in page
    assert "Hyperparameter importance: fewer than 8 scored trials" in page
    # two trials and one searched setting still make parallel coordinates
    assert 'id="chart-parallel_coordinates"' in page


def open_in_chromium(browser: str, page: Path, tmp_path: Path) -> tuple[str, list[str], list[str]]:
    """Load `page` in headless Chromium: the DOM once its scripts ran, what its scripts
    wrote to the console (errors included), and the URLs it asked the network for."""
    net_log = tmp_path / f"{page.stem}-net.json"
    done = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu",
         "--enable-unsafe-swiftshader",  # software WebGL, which parcoords draws its lines with
         f"--user-data-dir={tmp_path / 'chromium'}", "--enable-logging=stderr", "--v=0",
         f"--log-net-log={net_log}", "--virtual-time-budget=15000", "--dump-dom",
         page.as_uri()], capture_output=True, text=True, timeout=180, check=True)
    console = [m for m in re.findall(r":CONSOLE[^\]]*\] (.*)", done.stderr)
               # the GPU's performance notes on software WebGL are the browser's, not the page's
               if not m.startswith('"[.WebGL-')]
    log = json.loads(net_log.read_text())
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    # Chromium's own requests (updates, accounts) are not keyed to the file:// page
    requested = [e["params"]["url"] for e in log["events"] if e["type"] == start
                 and "file://" in e.get("params", {}).get("network_isolation_key", "")]
    return done.stdout, console, requested


@pytest.mark.slow
def test_html_report_renders_in_a_real_browser_offline(storage, tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if not browser:
        pytest.skip("no chromium installed (Debian package `chromium`)")
    # the net log shows what a page fetches: one that does is caught
    control = tmp_path / "control.html"
    control.write_text('<img src="http://127.0.0.1:9/x.png">')
    assert open_in_chromium(browser, control, tmp_path)[2] == ["http://127.0.0.1:9/x.png"]

    out = tmp_path / "report"
    assert sweep_cli("report", "asha", "--storage", str(storage), "--out", str(out)
                     ).returncode == 0
    dom, console, requested = open_in_chromium(browser, out / "report.html", tmp_path)
    assert console == [] and requested == []
    starts = sorted((dom.index(f'id="chart-{name}"'), name) for name in CHARTS)
    charts = {name: dom[start:end] for (start, name), (end, _) in
              zip(starts, [*starts[1:], (len(dom), "")])}
    for name, chart in charts.items():
        assert 'class="main-svg"' in chart, f"{name} drew nothing"
        assert "Share chart" not in chart  # an upload to Plotly Cloud: not offline
    ticks = re.findall(r'<g class="tick"[^>]*>.*?<text[^>]*>([^<]*)</text>',
                       charts["parallel_coordinates"])
    assert {"0.005", "0.01", "0.1", "0.5", "16", "32", "64"} <= set(ticks), ticks


@pytest.mark.slow
@pytest.mark.parametrize("table", ["trials", "history"])
def test_export_equals_the_live_tables_in_every_format(storage, tmp_path, table):
    live = pd.read_parquet(storage / "asha" / "results" / f"{table}.parquet")
    for fmt in ("parquet", "csv", "jsonl"):
        out = tmp_path / f"{table}.{fmt}"
        result = sweep_cli("export", "asha", "--storage", str(storage), "--table", table,
                           "-o", str(out))
        assert result.returncode == 0, result.stderr
        assert f"wrote {len(live)} {table} rows" in result.stderr
        # text readers guess types; a trial id like 6e736_00000 must stay text
        text = {c: str for c in live.columns if not pd.api.types.is_numeric_dtype(live[c])
                and not pd.api.types.is_bool_dtype(live[c])}
        if fmt == "parquet":
            back = pd.read_parquet(out)
        elif fmt == "csv":
            back = pd.read_csv(out, dtype=text)
        else:
            # pandas' fast JSON parser drops digits: read every float exactly
            back = pd.read_json(out, lines=True, dtype=False, precise_float=True)
        assert list(back.columns) == list(live.columns)
        if fmt == "parquet":
            pdt.assert_frame_equal(back, live)
            assert pq.read_schema(out).equals(pq.read_schema(
                storage / "asha" / "results" / f"{table}.parquet"), check_metadata=False)
        else:  # text formats: the same values (types as the text reader infers them)
            for column in live.columns:
                a, b = live[column], back[column]
                if pd.api.types.is_numeric_dtype(a) and a.notna().any():
                    np.testing.assert_allclose(pd.to_numeric(b, errors="coerce"), a,
                                               rtol=1e-12, err_msg=column)
                else:
                    assert a.isna().equals(b.isna()), column
                    assert (a.dropna().astype(str).values == b.dropna().astype(str).values
                            ).all() or a.dropna().empty, column


@pytest.mark.slow
def test_export_and_ls_of_a_sweep_killed_mid_way(storage, tmp_path, ray_address):
    here = tmp_path / "sweeps"
    shutil.copytree(storage / "asha", here / "asha")  # a finished sweep next to it
    # and one stopped gracefully (what Ctrl-C leaves: tables whole, status interrupted)
    shutil.copytree(storage / "grid", here / "grid")
    sweep_json = here / "grid" / "results" / schema.SWEEP_FILE
    sweep_json.write_text(json.dumps({**json.loads(sweep_json.read_text()),
                                      "status": "interrupted"}))
    spec = slow_spec(tmp_path, "cut")
    # a checkpoint each epoch makes Tune copy each trial's folder (result.json) to the
    # storage at once; without one its copy can lag behind the tables by seconds
    spec["train"]["checkpoint_every"] = 1
    results = here / "cut" / schema.RESULTS_DIR
    with ended_at_exit(start_sweep("run", str(write_spec(tmp_path, spec)), "--address",
                                   ray_address, "--quiet")) as proc:
        wait_for(lambda: ended_trials(results) >= 2 or proc.poll() is not None, 120,
                 "two trials to end")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    # Tune's trial folders hold every reported epoch; the tables may lag behind them
    reported = {(json.loads(line)["trial_id"], json.loads(line)["epoch"])
                for f in (here / "cut").glob("*/result.json")
                for line in f.read_text().splitlines() if line.strip()}
    (results / schema.HISTORY_FILE).unlink()  # and the history is gone
    shutil.rmtree(results / schema.HISTORY_PARTS_DIR, ignore_errors=True)
    out = tmp_path / "history.csv"
    result = sweep_cli("export", "cut", "--storage", str(here), "--table", "history",
                       "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert "rebuilt from Tune's trial folders" in result.stderr
    history = pd.read_csv(out)
    assert not history.duplicated(["trial_id", "epoch"]).any()
    assert set(zip(history["trial_id"], history["epoch"])) == reported

    listed = sweep_cli("ls", "--storage", str(here))
    assert listed.returncode == 0, listed.stderr
    lines = {line.split()[1]: line for line in listed.stdout.splitlines()
             if line.startswith("│")}
    assert "finished" in lines["asha"] and "val_acc" in lines["asha"]
    assert "interrupted" in lines["grid"]
    assert "killed (its driver died)" in lines["cut"]  # its lease is free: no driver


@pytest.mark.slow
def test_one_glob_query_reads_every_sweep_with_the_declared_schema(storage):
    files = sorted(storage.glob("*/results/trials.parquet"))
    assert len(files) == 2
    declared = schema.trials_schema("val_acc")
    for path in files:  # the declared types, whatever the values (no errors: still string)
        assert pq.read_schema(path).equals(declared, check_metadata=False), path
    table = ds.dataset(files, format="parquet").to_table()
    assert table.num_rows == 12
    assert str(table.schema.field("error").type) == "string"
    assert str(table.schema.field("config.dataset.limit").type) == "int64"
    history = ds.dataset(sorted(storage.glob("*/results/history.parquet"))).to_table()
    assert history.schema.equals(schema.history_schema(), check_metadata=False)


@pytest.mark.slow
def test_reading_commands_do_not_import_ray_or_torch(storage, tmp_path):
    import sys

    code = ("import sys\nfrom orchestrator.cli import main\n"
            "try:\n    main(sys.argv[1:])\nexcept SystemExit as e:\n    code = e.code\n"
            "assert 'ray' not in sys.modules and 'torch' not in sys.modules, "
            "[m for m in ('ray', 'torch') if m in sys.modules]\nsys.exit(code)\n")
    for args in (["ls", "--storage", str(storage)],
                 ["export", "asha", "--storage", str(storage), "-o", str(tmp_path / "t.csv")],
                 ["report", "grid", "--storage", str(storage), "--out", str(tmp_path / "r")]):
        result = subprocess.run([sys.executable, "-c", code, *args], capture_output=True,
                                text=True, timeout=120)
        assert result.returncode == 0, (args, result.stderr[-2000:])


# -- bad input: one line and exit 2, in-process ---------------------------------------

def test_export_of_a_missing_sweep(tmp_path):
    result = invoke("export", "nope", "--storage", str(tmp_path), "-o", str(tmp_path / "t.csv"))
    assert result.exit_code == 2
    assert result.stderr == f"error: no sweep 'nope' in {tmp_path}\n"
    assert not (tmp_path / "t.csv").exists()


def test_export_to_a_file_of_no_known_format(tmp_path):
    (tmp_path / "asha").mkdir()
    out = tmp_path / "x.txt"
    result = invoke("export", "asha", "--storage", str(tmp_path), "-o", str(out))
    assert result.exit_code == 2
    assert result.stderr == (f"error: -o: {out} does not end in .parquet, .csv or .jsonl; "
                             "say which with --format\n")
    assert not out.exists()


def test_report_of_a_folder_that_holds_no_sweep(tmp_path):
    folder = tmp_path / "notes"
    folder.mkdir()
    result = invoke("report", str(folder), "--out", str(tmp_path / "report"))
    assert result.exit_code == 2
    assert result.stderr == (f"error: {folder}: is not a sweep folder (it has no "
                             "results/sweep.json)\n")
    assert not (tmp_path / "report").exists()


def test_ls_of_a_storage_that_is_not_a_folder(tmp_path):
    result = invoke("ls", "--storage", str(tmp_path / "nope"))
    assert result.exit_code == 2
    assert result.stderr == f"error: --storage: {tmp_path / 'nope'} is not a folder\n"


def test_ls_leaves_out_other_folders_and_names_a_damaged_sweep(tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "broken" / "results").mkdir(parents=True)
    (tmp_path / "broken" / "results" / schema.SWEEP_FILE).write_text('{"spec": {')
    result = invoke("ls", "--storage", str(tmp_path))
    assert result.exit_code == 0, result.stderr
    assert f"1 sweeps in {tmp_path}" in result.stdout
    (row,) = [line for line in result.stdout.splitlines() if "broken" in line]
    assert "unreadable" in row
    assert "notes" not in result.stdout


def _stopped_sweep(storage: Path, name: str, status: str, tune_saved: bool) -> Path:
    """A sweep folder as a driver leaves it when it dies or is interrupted: sweep.json
    with `status`, and Ray Tune's state only when Tune saved it before the end."""
    folder = storage / name
    (folder / schema.RESULTS_DIR).mkdir(parents=True)
    spec = spec_from_mapping(tiny_spec(storage, name=name)).resolved()
    (folder / schema.RESULTS_DIR / schema.SWEEP_FILE).write_text(
        json.dumps({"spec": spec, "status": status, "segments": [{"command": "run"}]}))
    if tune_saved:
        (folder / "tuner.pkl").write_bytes(b"")
        (folder / "experiment_state-2026-01-01_00-00-00.json").write_text("{}")
    return folder


@pytest.mark.parametrize("status", ["running", "interrupted"])
def test_ls_offers_resume_only_where_resume_can_continue(tmp_path, status):
    """A driver killed (or stopped) before Ray Tune's first save leaves nothing Tune can
    restore, and `resume` refuses it: `ls` says to start it again instead."""
    _stopped_sweep(tmp_path, "early", status, tune_saved=False)
    _stopped_sweep(tmp_path, "later", status, tune_saved=True)
    listed = invoke("ls", "--storage", str(tmp_path))
    assert listed.exit_code == 0, listed.stderr
    rows = {line.split()[1]: line for line in listed.stdout.splitlines()
            if line.startswith("│")}
    assert "sweep resume" not in rows["early"] and "sweep run SPEC --overwrite" in rows["early"]
    assert "--overwrite" not in rows["later"]
    if status == "running":  # its lease is free: nobody holds it
        assert "killed (its driver died): sweep resume" in rows["later"]
    refused = invoke("resume", str(tmp_path / "early"))  # what ls no longer offers
    assert refused.exit_code == 2 and "sweep run SPEC --overwrite" in refused.stderr


# -- the charts' axes and their edge cases, on hand-made tables -----------------------

AXES_SPEC = {"name": "hand", "metric": "val_acc", "mode": "max",
             "train": {"epochs": 3}, "scheduler": {"name": "asha", "grace_period": 1},
             "search_space": {"optimizer.lr": {"loguniform": [1e-4, 0.1]},
                              "model.activation": {"choice": ["relu", "gelu", "tanh"]},
                              "batch_size": {"choice": [32, 64]},
                              "model.depth": {"randint": [1, 3]}}}


def hand_made(best: list[float]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A trials table of len(best) trials (three at most) and their histories."""
    n = len(best)
    trials = pd.DataFrame({
        "trial_id": ["t0", "t1", "t2"][:n], "stop_reason": ["completed", "scheduler", None][:n],
        "config.optimizer.lr": [1e-4, 3e-3, 0.05][:n],
        "config.model.activation": ["gelu", "relu", "gelu"][:n],
        "config.batch_size": [64, 32, 64][:n], "config.model.depth": [1, 3, 2][:n],
        "best_val_acc": best})
    history = pd.DataFrame([{"trial_id": t, "epoch": e, "lr": 0.01, "val_loss": 1.0 / e,
                             "val_acc": b} for t, b in zip(trials["trial_id"], best)
                            for e in (1, 2, 3)])
    return trials, history


def test_parallel_coordinates_axes_carry_the_real_values():
    from orchestrator.analysis import charts

    trials, _ = hand_made([0.5, 0.9, float("nan")])
    fig = charts.parallel_coordinates(trials, AXES_SPEC)
    lr, activation, batch, depth, metric = fig.data[0].dimensions
    # log10 of the rate is drawn; the ticks read the rate itself
    np.testing.assert_allclose(lr.values, np.log10([1e-4, 3e-3]))  # the unscored trial left out
    assert lr.ticktext == ("0.0001", "0.001", "0.01", "0.1")
    np.testing.assert_allclose(lr.tickvals, [-4, -3, -2, -1])
    np.testing.assert_allclose(lr.range, [-4, -1])
    # a choice: its index is drawn, its names (in the spec's order) read
    assert activation.ticktext == ("relu", "gelu", "tanh")
    assert list(activation.tickvals) == [0, 1, 2] and list(activation.values) == [1, 0]
    assert batch.ticktext == ("32", "64") and list(batch.values) == [1, 0]
    assert depth.ticktext == ("1", "2", "3") and list(depth.values) == [1, 3]
    # the objective last, and the colour of every line
    assert metric.label == "best_val_acc" and list(metric.values) == [0.5, 0.9]
    assert list(fig.data[0].line.color) == [0.5, 0.9]


def test_log_ticks_are_round_values_inside_the_searched_range():
    from orchestrator.analysis.axes import linear_ticks, log_ticks

    assert log_ticks(1e-4, 0.3) == [1e-4, 1e-3, 1e-2, 0.1]
    assert log_ticks(0.003, 0.5) == [0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5]
    assert log_ticks(16, 24) == [16, 24]  # no round value between: the ends
    assert linear_ticks(0.0, 0.5) == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]
    assert linear_ticks(1, 3, integer=True) == [1, 2, 3]


def test_charts_of_one_trial_and_of_a_metric_never_reported():
    from orchestrator.analysis import charts
    from orchestrator.analysis.importance import importance

    trials, history = hand_made([0.7])
    scores = importance(trials, AXES_SPEC)
    assert scores.empty and charts.importance(scores, AXES_SPEC) is None
    drawn = {"learning_curves": charts.learning_curves(trials, history, AXES_SPEC),
             "metric_vs_settings": charts.metric_vs_settings(trials, AXES_SPEC),
             "parallel_coordinates": charts.parallel_coordinates(trials, AXES_SPEC),
             "lr_curves": charts.lr_curves(trials, history, AXES_SPEC)}
    for name, fig in drawn.items():  # one trial is still a chart
        assert f'id="chart-{name}"' in charts.fragment(fig, name), name
    low, high = drawn["parallel_coordinates"].data[0].dimensions[-1].range
    assert low < 0.7 < high  # one value is not an empty range

    trials, history = hand_made([float("nan")] * 3)
    curves = charts.learning_curves(trials, history, AXES_SPEC)
    assert curves.layout.yaxis.title.text == "val_loss"  # the metric's stand-in, said so
    assert "(no epoch reported val_acc)" in curves.layout.title.text
    assert "<b>t1</b> (scheduler)<br>optimizer.lr = 0.003" in curves.data[1].hovertemplate
    for name in ("metric_vs_settings", "parallel_coordinates"):
        assert getattr(charts, name)(trials, AXES_SPEC) is None and charts.SKIPPED[name]
    assert charts.lr_curves(trials, history, AXES_SPEC) is None
    history["val_loss"] = float("nan")
    assert charts.learning_curves(trials, history, AXES_SPEC) is None


def test_the_signals_beside_the_loss_a_log_panel_each_where_recorded(tmp_path):
    """Where the history has the training's signals: the loss, then a panel per signal
    with something to draw, on log axes (a value that is not positive and finite, a gap),
    the update ratio's 1e-3 yardstick dotted; none recorded (an older sweep), no figure."""
    from orchestrator.analysis import charts, plots

    trials, history = hand_made([0.7, 0.8])
    assert charts.signals(trials, history, AXES_SPEC) is None
    assert plots.signals(trials, history, AXES_SPEC, tmp_path) is None
    assert charts.SKIPPED["signals"] == plots.SKIPPED["signals"]
    history = history.assign(grad_norm=[1.0, 10.0, float("inf"), 0.5, 0.4, 0.3],
                             grad_norm_max=[2.0, 20.0, float("inf"), 1.0, 0.8, 0.6],
                             update_ratio=[1e-3, 2e-3, 0.1, 1e-7, 1e-7, 2e-7],
                             grad_norm_ratio=None)  # a shallow net's: no panel
    fig = charts.signals(trials, history, AXES_SPEC)
    titles = [a.text for a in fig.layout.annotations]
    assert titles == ["val_loss", "gradient norm (mean)", "gradient norm (max)",
                      "update / weights"]
    assert fig.layout.yaxis.type != "log"
    assert [fig.layout[f"yaxis{i}"].type for i in (2, 3, 4)] == ["log"] * 3
    by_trial = [d for d in fig.data if d.xaxis == "x2"]
    assert np.isnan(by_trial[0].y[2]) and list(by_trial[0].y[:2]) == [1.0, 10.0]
    assert [s.y0 for s in fig.layout.shapes] == [1e-3]
    assert not_blank(plots.signals(trials, history, AXES_SPEC, tmp_path))
