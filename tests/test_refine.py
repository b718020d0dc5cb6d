"""`sweep refine`: the next spec from a sweep's evidence. In-process on hand-built sweep
folders (the fast lane), a property test that it never writes an invalid spec, and one
real tiny sweep refined and its next spec run (slow)."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.analysis.refine import next_name, refine
from orchestrator.analysis.spec_yaml import spec_yaml
from orchestrator.results.load import SweepTables
from orchestrator.results.storage import as_location
from orchestrator.spec.model import load_spec, safe_load, spec_from_mapping
from tests.built_sweeps import EPOCHS, Made, log_spaced, tables, write_sweep
from tests.helpers import invoke, tiny_spec


def spec(space: dict, **changes) -> dict:
    return {"name": "made", "num_samples": 14, "seed": 7,
            "train": {"epochs": EPOCHS}, "scheduler": {"name": "fifo"},
            "search_space": space, **changes}


SPACE = {"optimizer.lr": {"loguniform": [1e-5, 0.1]}, "batch_size": {"choice": [32, 64]}}


def edge_and_dead() -> list[Made]:
    """Five low rates that never beat chance; the best at the top of the range."""
    return [Made({"optimizer.lr": lr, "batch_size": (32, 64)[i % 2]},
                 "chance" if i < 5 else "good", score=0.5 + 0.03 * i)
            for i, lr in enumerate(log_spaced(1e-5, 0.1, 14))]


def comments_above(text: str, key: str) -> str:
    """The comment lines right above `key:` in a YAML text, joined."""
    lines = text.splitlines()
    at = next(i for i, line in enumerate(lines) if line.strip().startswith(f"{key}:"))
    above = []
    for line in reversed(lines[:at]):
        if not line.strip().startswith("#"):
            break
        above.insert(0, line.strip().lstrip("#").strip())
    return " ".join(above)


def digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("name, expected", [
    ("made", "made-r2"), ("made-r2", "made-r3"), ("made-r9", "made-r10"),
    ("x-rank", "x-rank-r2"), ("a" * 128, "a" * 125 + "-r2")])
def test_next_name(name, expected):
    assert next_name(name) == expected


def test_refine_moves_the_space_with_its_evidence_and_the_spec_validates(tmp_path):
    folder = write_sweep(tmp_path / "sweeps", spec(SPACE), edge_and_dead())
    before = digest(folder)
    out = tmp_path / "next" / "made-r2.yaml"
    result = invoke("refine", str(folder), "-o", str(out))
    assert result.exit_code == 0, result.stderr
    text = out.read_text()
    data = yaml.safe_load(text)
    assert data["name"] == "made-r2" and data["seed"] == 8
    # the spec's storage is ./sweeps, the sweep was found in another: the warm start says so
    assert data["warm_start"] == {"from": "made", "storage": str(tmp_path / "sweeps")}
    (low, high), = data["search_space"]["optimizer.lr"].values()
    assert "loguniform" in data["search_space"]["optimizer.lr"]  # log kept
    dead = f"{log_spaced(1e-5, 0.1, 14)[4]:.3g}"
    assert high > 0.1 and low >= float(dead)  # widened above, the dead end cut
    why = comments_above(text, "optimizer.lr")
    assert why.startswith("was loguniform [1e-05, 0.1]:")
    assert (f"5 of 5 trials with optimizer.lr <= {dead} never beat chance: cut optimizer.lr "
            f"up to {dead}") in why
    assert ("the best trial (val_acc 0.89) and 2 of the best 3 have optimizer.lr in the top "
            "tenth of its range [1e-05, 0.1] (log axis): widen it upward") in why
    assert comments_above(text, "seed").startswith("was 7: a new seed")
    # the table: before -> after
    table = " ".join(result.stdout.split())
    assert "made -> made-r2" in table and "search_space.optimizer.lr" in table
    assert f"wrote {out}" in table
    # `sweep validate` takes it, from another folder than the sweep's
    checked = invoke("validate", str(out))
    assert checked.exit_code == 0, checked.stderr
    assert "warm start  from made" in checked.stdout
    assert digest(folder) == before  # the sweep itself is not touched


def test_default_output_is_here_and_an_existing_file_is_kept(tmp_path, monkeypatch):
    write_sweep(tmp_path / "elsewhere", spec(SPACE), edge_and_dead())
    monkeypatch.chdir(tmp_path)
    result = invoke("refine", "made", "--storage", "elsewhere")
    assert result.exit_code == 0, result.stderr
    out = tmp_path / "made-r2.yaml"
    data = yaml.safe_load(out.read_text())
    # found in another storage than the spec's own (./sweeps): the warm start says where
    assert data["warm_start"] == {"from": "made", "storage": str(tmp_path / "elsewhere")}
    written = out.read_text()
    again = invoke("refine", "made", "--storage", "elsewhere", "--num-samples", "3")
    assert again.exit_code == 2
    assert again.stderr == ("error: -o: made-r2.yaml exists; give --overwrite to replace "
                            "it, or another -o\n")
    assert out.read_text() == written and not list(tmp_path.glob(".made-r2.yaml.tmp*"))
    replaced = invoke("refine", "made", "--storage", "elsewhere", "--num-samples", "3",
                      "--overwrite")
    assert replaced.exit_code == 0, replaced.stderr
    assert yaml.safe_load(out.read_text())["num_samples"] == 3


def test_no_evidence_for_a_change_says_so_and_keeps_the_space(tmp_path):
    # scores that follow no setting
    made = [Made({"optimizer.lr": lr, "batch_size": (32, 64)[i % 2]},
                 score=0.95 if i in (0, 7, 13) else 0.8 + 0.001 * i)
            for i, lr in enumerate(log_spaced(1e-5, 0.1, 14))]
    folder = write_sweep(tmp_path / "sweeps", spec(SPACE), made)
    out = tmp_path / "next.yaml"
    result = invoke("refine", str(folder), "-o", str(out))
    assert result.exit_code == 0, result.stderr
    assert "the evidence supports no change to the search space: it is kept as it was" in \
        " ".join(result.stdout.split())
    data = yaml.safe_load(out.read_text())
    assert data["search_space"] == spec_from_mapping(spec(SPACE)).resolved()["search_space"]
    assert data["name"] == "made-r2" and data["warm_start"]["from"] == "made"
    assert invoke("validate", str(out)).exit_code == 0


def test_too_few_trials_say_why_nothing_moved(tmp_path):
    folder = write_sweep(tmp_path / "sweeps", spec(SPACE), edge_and_dead()[:5])
    result = invoke("refine", str(folder), "-o", str(tmp_path / "next.yaml"))
    assert result.exit_code == 0, result.stderr
    assert ("it is kept as it was (5 trials ended without error; a claim needs 8 at least)"
            in " ".join(result.stdout.split()))


def test_the_asha_grace_period_the_advice_asks_for_is_written(tmp_path):
    made = [Made({"optimizer.lr": lr}, "chance" if i < 8 else "good", stop_reason=(
        "scheduler" if i < 8 else "completed"), epochs=1 if i < 8 else EPOCHS)
            for i, lr in enumerate(log_spaced(1e-5, 0.1, 12))]
    asha = spec({"optimizer.lr": {"loguniform": [1e-5, 0.1]}},
                scheduler={"name": "asha", "grace_period": 1})
    folder = write_sweep(tmp_path / "sweeps", asha, made)
    out = tmp_path / "next.yaml"
    assert invoke("refine", str(folder), "-o", str(out)).exit_code == 0
    text = out.read_text()
    assert yaml.safe_load(text)["scheduler"]["grace_period"] == 2
    assert comments_above(text, "grace_period") == (
        "was 1: ASHA stopped 8 of 12 trials at epoch 1 while the best trial peaked at epoch "
        "5: consider grace_period 2")


def test_code_and_data_paths_resolve_from_where_the_next_spec_is_written(tmp_path,
                                                                           monkeypatch):
    project = tmp_path / "project"
    (project / "src").mkdir(parents=True)
    (project / "my_models.py").write_text(
        "def build(input_shape, num_outputs, width=8):\n"
        "    import torch\n"
        "    return torch.nn.Linear(input_shape[0], num_outputs)\n")
    (project / "src" / "helper.py").write_text("X = 1\n")
    (project / "data.csv").write_text("a,b,label\n" + "".join(
        f"{i},{i % 3},{i % 2}\n" for i in range(40)))
    monkeypatch.chdir(project)  # as the user ran it: relative paths from here
    user = spec({"model.width": {"choice": [4, 8]}}, code=["src"],
                train={"epochs": EPOCHS, "dataset": {"name": "table", "path": "data.csv"},
                       "model": {"factory": "my_models:build", "width": 8}})
    made = [Made({"model.width": (4, 8)[i % 2]}, score=0.8 + 0.01 * i) for i in range(10)]
    folder = write_sweep(tmp_path / "sweeps", user, made, spec_dir=project)
    recorded = json.loads((folder / "results" / "sweep.json").read_text())["spec"]
    assert recorded["code"] == [str(project / "src"), str(project)]  # absolute in sweep.json

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    result = invoke("refine", str(folder), "-o", "next.yaml")
    assert result.exit_code == 0, result.stderr
    assert invoke("validate", "next.yaml").exit_code == 0
    data = yaml.safe_load((elsewhere / "next.yaml").read_text())
    assert data["code"] == [str(project / "src"), str(project)]
    assert data["train"]["dataset"]["path"] == str(project / "data.csv")
    # written inside the project: its code folders relative to the spec, so they move
    # with it
    result = invoke("refine", str(folder), "-o", str(project / "next.yaml"))
    assert result.exit_code == 0, result.stderr
    assert yaml.safe_load((project / "next.yaml").read_text())["code"] == ["src", "."]
    assert invoke("validate", str(project / "next.yaml")).exit_code == 0


def test_refine_of_no_sweep_is_one_line(tmp_path):
    result = invoke("refine", "nope", "--storage", str(tmp_path))
    assert result.exit_code == 2
    assert result.stderr == f"error: no sweep 'nope' in {tmp_path}\n"


def test_a_comment_cannot_become_yaml():
    """A choice's name goes into comments: a line break in it must not end the comment."""
    data = {"name": "x", "search_space": {"k": {"choice": ["a\nname: evil", "b"]}}}
    text = spec_yaml(data, {("search_space", "k"): ["dropped a\nname: evil\u2028seed: 9"]},
                     ["header\nname: evil"])
    assert safe_load(text) == data
    assert not any(line.startswith(("name: evil", "seed:")) for line in text.splitlines())


# -- property: refine never writes an invalid spec -------------------------------------

@st.composite
def sweeps(draw):
    low = draw(st.floats(1e-6, 1e-2))
    high = low * draw(st.floats(1.5, 1e4))
    lr_kind = draw(st.sampled_from(["loguniform", "uniform"]))
    batches = sorted(draw(st.sets(st.sampled_from([8, 16, 32, 64, 128, 256]), min_size=2)))
    depth_high = draw(st.integers(1, 5))
    dropout_high = draw(st.floats(0.05, 0.9))
    activations = draw(st.lists(st.sampled_from(["relu", "gelu", "tanh", "silu"]),
                                min_size=2, max_size=4, unique=True))
    space = {"optimizer.lr": {lr_kind: [low, high]}, "batch_size": {"choice": batches},
             "model.depth": {"randint": [1, depth_high]},
             "model.dropout": {"uniform": [0.0, dropout_high]},
             "model.activation": {"choice": activations}}
    scheduler = draw(st.sampled_from([{"name": "fifo"}, {"name": "asha", "grace_period": 1},
                                      {"name": "asha", "grace_period": 3}]))
    made = []
    for _ in range(draw(st.integers(0, 30))):
        config = {"optimizer.lr": draw(st.floats(low, high)),
                  "batch_size": draw(st.sampled_from(batches)),
                  "model.depth": draw(st.integers(1, depth_high)),
                  "model.dropout": draw(st.floats(0.0, dropout_high)),
                  "model.activation": draw(st.sampled_from(activations))}
        made.append(Made(config, draw(st.sampled_from(["good", "chance", "diverged"])),
                         score=draw(st.floats(0.2, 0.99)),
                         stop_reason=draw(st.sampled_from(["completed", "scheduler",
                                                           "early_stopping", "error"])),
                         epochs=draw(st.integers(1, EPOCHS)),
                         effective_lr=config["optimizer.lr"] * draw(st.floats(0.25, 4)),
                         speed=draw(st.floats(0.05, 3))))
    scaling = draw(st.sampled_from(["none", "sqrt"]))
    return spec(space, scheduler=scheduler,
                train={"epochs": EPOCHS, "batch_scaling": {"rule": scaling}}), made


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sweeps(), st.one_of(st.none(), st.integers(1, 50)))
def test_refine_never_writes_an_invalid_spec(sweep, num_samples):
    data, made = sweep
    resolved = spec_from_mapping(data).resolved()
    trials, history = tables(made)
    if not len(trials):
        trials = trials.reindex(columns=["trial_id", "stop_reason", "best_val_acc"])
    folder = as_location(Path("/nonexistent-storage") / "made")
    swept = SweepTables(folder, {"spec": resolved, "status": "finished"}, trials, history, [])
    out = Path("/nonexistent-next/next.yaml")
    refined = refine(swept, out, num_samples)
    written = safe_load(refined.text)
    assert written == refined.data
    next_spec = spec_from_mapping(written, str(out), out.parent)  # raises if invalid
    assert next_spec.name == "made-r2"
    for key, dist in resolved["search_space"].items():
        assert next(iter(written["search_space"][key])) == next(iter(dist))  # kind kept
    if num_samples:
        assert next_spec.num_samples == num_samples


# -- one real sweep ------------------------------------------------------------------------

@pytest.mark.slow
def test_a_real_sweep_with_its_best_at_the_top_of_a_log_range_is_refined_and_runs(
        tmp_path, ray_address):
    from orchestrator.engine.run import run_sweep

    sweep = tiny_spec(tmp_path, name="edge", num_samples=12, seed=4,
                      search_space={"optimizer.lr": {"loguniform": [1.0e-6, 0.03]}})
    sweep["train"].update(schedule={"name": "constant"}, epochs=3)
    run_sweep(spec_from_mapping(sweep))
    out = tmp_path / "edge-r2.yaml"
    result = invoke("refine", str(tmp_path / "sweeps" / "edge"), "-o", str(out),
                    "--num-samples", "2")
    assert result.exit_code == 0, result.stderr
    text = out.read_text()
    (low, high), = yaml.safe_load(text)["search_space"]["optimizer.lr"].values()
    assert high > 0.03 and low > 1.0e-6  # widened above the edge, the dead low end cut
    why = comments_above(text, "optimizer.lr")
    assert "have optimizer.lr in the top tenth of its range [1e-06, 0.03] (log axis): " \
           "widen it upward" in why
    assert "trials with optimizer.lr <= " in why and "never beat chance" in why
    assert invoke("validate", str(out)).exit_code == 0
    # the next spec runs, and its sweep records where it came from
    outcome = run_sweep(load_spec(out))
    assert len(outcome.trials) == 2 and outcome.errored == 0
    recorded = json.loads((outcome.results_dir / "sweep.json").read_text())["spec"]
    assert recorded["name"] == "edge-r2"
    assert recorded["warm_start"] == {"from": "edge", "storage": None, "rerun_best": 1}
    assert all(low <= lr <= high for lr in outcome.trials["config.optimizer.lr"])
    assert not math.isnan(outcome.trials["best_val_acc"].max())


def test_a_recorded_spec_that_no_longer_validates_writes_nothing(tmp_path):
    project = tmp_path / "project"
    (project / "src").mkdir(parents=True)
    user = spec(SPACE, code=[str(project / "src")])
    folder = write_sweep(tmp_path / "sweeps", user, edge_and_dead())
    (project / "src").rmdir()  # the code folder the sweep shipped is gone
    out = tmp_path / "next.yaml"
    result = invoke("refine", str(folder), "-o", str(out))
    assert result.exit_code == 2
    assert result.stderr == (f"error: sweep made: its recorded spec does not validate any "
                             f"more, so no next spec is written (code: {project / 'src'} is "
                             "not a folder)\n")
    assert not out.exists()
