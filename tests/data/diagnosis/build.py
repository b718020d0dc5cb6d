"""Build the labelled corpus of real curves that `tests/test_diagnosis_corpus.py` checks.

Runs every sweep spec in `specs/` with the orchestrator (embedded Ray, the shared
trainable), and keeps each trial's history rows and the trial-row fields the diagnosis
reads in two small Parquet files next to this script:

    curves.parquet   curve_id, epoch, lr, train_loss, val_loss, val_acc, val_mae, val_r2,
                     grad_norm, grad_norm_max, update_ratio, grad_norm_ratio
    trials.parquet   curve_id, sweep, split, metric, mode, stop_reason, epochs,
                     effective_lr, baselines, config

A curve is named `<sweep>/<trial index>`. The labels are not made here: a person reads
each curve (`--show` prints them) and writes its label and reason into `labels.yaml`.

`split` says what a curve is for: `dev` curves may be read while tuning the diagnosis;
`heldout` curves measure it, and their labels must be written before the diagnosis is
ever run on them. The first sweeps are all `dev`; the curves of an `ho-` sweep are split
in half by a hash of their curve ids, within each of its setups and across its rates, so
that every such setup has curves in both parts (see `assign_split`). Every curve of an
`h2-` sweep is `heldout2`: a second, fresh held-out batch, built after the first one had
been measured; every curve of an `h3-` sweep is `heldout3`, a third one, built after the
second had been measured; every curve of an `h4-` sweep is `heldout4`, a fourth one,
built after the third had been measured; every curve of an `h5-` sweep is `heldout5`, a
fifth one, built after the fourth had been measured; every curve of an `h6-` sweep is
`heldout6`, a sixth one, built after the fifth had been measured; every curve of an
`h7-` sweep is `heldout7`, a seventh one, built after the sixth had been measured;
every curve of an `h8-` sweep is `heldout8`, an eighth one, built after the seventh had
been measured; every curve of an `h9-` sweep is `heldout9`, a ninth one, built after the
eighth had been measured, with the training's own signals (issue #33). The curves of an
`s-` sweep are `dev_signals`: development data with the signals, built with the ninth
batch from other setups. A split once recorded is kept when other sweeps are added or
rebuilt.

The signals (`grad_norm`, `grad_norm_max`, `update_ratio`, `grad_norm_ratio`: the
trainer's, trainable/signals.py) are kept for the sweeps built since they were recorded;
the curves of older builds hold them as null (a rebuild of an older sweep would record
them, and change its curves: keep its split, and relabel).

    python tests/data/diagnosis/build.py                 # (re)build every sweep
    python tests/data/diagnosis/build.py --only NAME     # add or rebuild one sweep
    python tests/data/diagnosis/build.py --show [SWEEP]  # print the curves to label
    python tests/data/diagnosis/build.py --show 'ho-*' --split heldout
    python tests/data/diagnosis/build.py --show 'h2-*' --split heldout2
    python tests/data/diagnosis/build.py --show 'h3-*' --split heldout3 --headers
    python tests/data/diagnosis/build.py --show 'h4-*' --split heldout4 --headers
    python tests/data/diagnosis/build.py --show 'h5-*' --split heldout5 --headers
    python tests/data/diagnosis/build.py --show 'h6-*' --split heldout6 --headers
    python tests/data/diagnosis/build.py --show 'h7-*' --split heldout7 --headers
    python tests/data/diagnosis/build.py --show 'h8-*' --split heldout8 --headers
    python tests/data/diagnosis/build.py --show 's-*' --split dev_signals --headers
    python tests/data/diagnosis/build.py --show 'h9-*' --split heldout9 --headers

Specs name their data files relative to the repository root (where this script runs
them from). Rebuilding an ASHA sweep can stop different trials (concurrency), so relabel
after it. The tables of the `ho-table-*`, `h2-`, `h3-`, `h4-`, `h5-`, `h6-`, `h7-`,
`h8-`, `h9-` and `s-` specs are made by `tables/make_tables.py`.
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import math
import os
import sys
import tempfile
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]  # the repository: specs' data paths are relative to it
CURVES, TRIALS = HERE / "curves.parquet", HERE / "trials.parquet"
SIGNAL_COLUMNS = ["grad_norm", "grad_norm_max", "update_ratio", "grad_norm_ratio"]
CURVE_COLUMNS = ["curve_id", "epoch", "lr", "train_loss", "val_loss", "val_acc",
                 "val_mae", "val_r2", *SIGNAL_COLUMNS]
KEEP_CONFIG = ["config.optimizer.name", "config.optimizer.lr", "config.schedule.name",
               "config.model.hidden", "config.model.depth", "config.batch_size",
               "config.dataset.name", "config.early_stopping.patience", "config.epochs",
               # added with the `ho-` sweeps (filled from the spec for the first sweeps)
               "config.task", "config.loss", "config.model.name", "config.model.norm",
               "config.model.activation", "config.model.dropout", "config.model.channels",
               "config.optimizer.momentum", "config.optimizer.weight_decay",
               "config.dataset.standardize", "config.dataset.noise",
               "config.batch_scaling.rule", "config.batch_scaling.reference_batch_size",
               # added with the `h5-` sweeps (one searches it)
               "config.optimizer.grad_clip"]
HELDOUT_PREFIX = "ho-"
# every curve of an `hN-` sweep is `heldoutN`: the fresh batches, each built after the
# one before had been measured
FRESH_BATCHES = {f"h{n}-": f"heldout{n}" for n in range(2, 10)}
# every curve of an `s-` sweep is development data with the training's signals
SIGNAL_DEV_PREFIX, SIGNAL_DEV = "s-", "dev_signals"
SPLITS = ("dev", "heldout", *FRESH_BATCHES.values(), SIGNAL_DEV)


def _load_spec(spec_path: Path, overrides: list[str] = ()):
    from orchestrator.spec import load_spec

    os.chdir(ROOT)  # relative data paths in a spec are made absolute against the cwd
    return load_spec(spec_path, list(overrides))


def run_one(spec_path: Path, storage: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    from orchestrator.engine.run import run_sweep
    from orchestrator.results.schema import BASELINE_COLUMNS

    spec = _load_spec(spec_path, [f"storage={storage}"])
    outcome = run_sweep(spec)
    trials, history = outcome.trials, outcome.history
    index = {t: f"{spec.name}/{int(t.rsplit('_', 1)[-1]):02d}" for t in trials["trial_id"]}
    curves = history.assign(curve_id=history["trial_id"].map(index))[CURVE_COLUMNS]
    rows = trials.assign(curve_id=trials["trial_id"].map(index), sweep=spec.name,
                         metric=spec.metric, mode=spec.mode)
    rows = rows[["curve_id", "sweep", "metric", "mode", "stop_reason", "epochs",
                 *BASELINE_COLUMNS, *KEEP_CONFIG, "effective_lr"]]
    rows.insert(2, "split", assign_split(rows, spec.name, spec.grid_keys))
    return curves, rows


def assign_split(rows: pd.DataFrame, sweep: str, grid_keys: list[str]) -> list[str]:
    """`dev` for the first sweeps. An `ho-` sweep's curves are split in half within each
    setup (each combination of its grid values other than the rate): taken in order of
    rate, each consecutive pair gives one curve to `heldout` (the one whose curve-id hash
    comes first) and the other to `dev`; a setup's odd last curve goes by its hash. Every
    curve of an `h2-` sweep is `heldout2`, of an `h3-` sweep `heldout3`, of an `h4-` sweep
    `heldout4`, of an `h5-` sweep `heldout5`, of an `h6-` sweep `heldout6`, of an `h7-`
    sweep `heldout7`, of an `h8-` sweep `heldout8`, of an `h9-` sweep `heldout9`; of an
    `s-` sweep `dev_signals`."""
    fresh = next((split for prefix, split in FRESH_BATCHES.items()
                  if sweep.startswith(prefix)), None)
    if sweep.startswith(SIGNAL_DEV_PREFIX):
        fresh = SIGNAL_DEV
    if fresh is not None:
        return [fresh] * len(rows)
    if not sweep.startswith(HELDOUT_PREFIX):
        return ["dev"] * len(rows)
    digest = {c: hashlib.sha256(c.encode()).hexdigest() for c in rows["curve_id"]}
    keys = [f"config.{k}" for k in grid_keys
            if k != "optimizer.lr" and f"config.{k}" in rows]
    split = {}
    for _, setup in (rows.groupby(keys, dropna=False) if keys else [(None, rows)]):
        ordered = setup.sort_values(["config.optimizer.lr", "curve_id"])["curve_id"].tolist()
        for i in range(0, len(ordered), 2):
            pair = ordered[i:i + 2]
            if len(pair) == 2:
                first = min(pair, key=digest.get)
                split.update({c: "heldout" if c == first else "dev" for c in pair})
            else:
                split[pair[0]] = "heldout" if int(digest[pair[0]], 16) % 2 else "dev"
    return [split[c] for c in rows["curve_id"]]


def backfill(trials: pd.DataFrame, specs: dict[str, Path]) -> pd.DataFrame:
    """Columns added after a sweep was built: the kept settings its spec fixes (not
    searched) and its effective rate, where missing; and `split`, where missing (from
    `assign_split`; a split already recorded is kept, so that a curve moved from one part
    to another stays there). No other existing value is changed."""
    from orchestrator.results.schema import BASELINE_COLUMNS
    from orchestrator.spec.settings import BatchScalingConfig
    from orchestrator.trainable.scaling import effective_lr

    trials = trials.copy()
    if "split" not in trials:
        trials.insert(2, "split", None)
    for sweep, rows in trials.groupby("sweep"):
        if sweep not in specs:
            continue
        spec = _load_spec(specs[sweep])
        missing = trials.loc[rows.index, "split"].isna()
        if missing.any():
            split = pd.Series(assign_split(rows, sweep, spec.grid_keys), index=rows.index)
            trials.loc[rows.index[missing], "split"] = split[missing]
        train = pd.json_normalize(spec.train.model_dump(mode="json")).iloc[0]
        for column in KEEP_CONFIG:
            key = column.removeprefix("config.")
            if key in spec.search_space or key not in train:
                continue
            if column not in trials:
                trials[column] = pd.Series(dtype=object)
            fill = trials.loc[rows.index, column].isna()
            trials.loc[rows.index[fill], column] = train[key]
        if "effective_lr" not in trials:
            trials["effective_lr"] = math.nan
        fill = rows.index[trials.loc[rows.index, "effective_lr"].isna()]
        scaling = BatchScalingConfig(rule=train["batch_scaling.rule"], reference_batch_size=
                                     int(train["batch_scaling.reference_batch_size"]))
        trials.loc[fill, "effective_lr"] = [
            effective_lr(lr, bs, scaling) for lr, bs in
            zip(trials.loc[fill, "config.optimizer.lr"], trials.loc[fill, "config.batch_size"])]
    first = ["curve_id", "sweep", "split", "metric", "mode", "stop_reason", "epochs",
             *BASELINE_COLUMNS, *KEEP_CONFIG, "effective_lr"]
    order = [c for c in first if c in trials] + [c for c in trials if c not in first]
    return trials[order].infer_objects()


def build(only: str | None) -> None:
    all_specs = sorted((HERE / "specs").glob("*.yaml"))
    specs = all_specs
    if only:
        specs = [s for s in specs if s.stem == only]
        if not specs:
            sys.exit(f"no spec named {only!r} in {HERE / 'specs'}")
    curves = pd.read_parquet(CURVES) if CURVES.exists() else pd.DataFrame()
    trials = pd.read_parquet(TRIALS) if TRIALS.exists() else pd.DataFrame()
    with tempfile.TemporaryDirectory() as storage:
        for spec_path in specs:
            new_curves, new_trials = run_one(spec_path, Path(storage))
            name = new_trials["sweep"].iloc[0]
            if len(trials):
                keep = trials["sweep"] != name
                curves = curves[curves["curve_id"].isin(trials.loc[keep, "curve_id"])]
                trials = trials[keep]
            curves = pd.concat([curves, new_curves], ignore_index=True)
            trials = pd.concat([trials, new_trials], ignore_index=True)
            print(f"{name}: {len(new_trials)} curves")
    trials = backfill(trials, {s.stem: s for s in all_specs})
    curves.sort_values(["curve_id", "epoch"]).to_parquet(CURVES, index=False)
    trials.sort_values("curve_id").to_parquet(TRIALS, index=False)


def _series(values) -> str:
    return " ".join("nan" if not math.isfinite(v) else f"{v:.3g}" for v in values)


def _signal_series(values) -> str:
    """A signal per epoch: `-` where not measured (null), `inf` where a measured value
    was not finite, else 3 significant digits."""
    return " ".join("-" if v is None or v != v else "inf" if math.isinf(v) else f"{v:.3g}"
                    for v in values)


def _get(t: pd.Series, column: str, default=None):
    value = t.get(column, default)
    return default if value is None or (isinstance(value, float) and math.isnan(value)) \
        else value


def _setup(t: pd.Series) -> str:
    """The trial's settings in one line (only those that apply to its model and data)."""
    model, task = _get(t, "config.model.name", "mlp"), _get(t, "config.task", "classification")
    loss = _get(t, "config.loss") or ("mse" if task == "regression" else "cross_entropy")
    parts = [f"{task}/{loss}", f"data={t['config.dataset.name']}"]
    if t["config.dataset.name"] == "table" and _get(t, "config.dataset.standardize") is not None:
        parts[-1] += f" standardize={bool(t['config.dataset.standardize'])}"
    if t["config.dataset.name"] == "synthetic" and _get(t, "config.dataset.noise") is not None:
        parts[-1] += f" noise={t['config.dataset.noise']:g}"
    size = (f"c={int(t['config.model.channels'])}x{int(t['config.model.depth'])}"
            if model in ("cnn", "resnet") else
            f"h={int(t['config.model.hidden'])}x{int(t['config.model.depth'])}")
    parts.append(f"model={model} {size}")
    for column, short in (("config.model.norm", "norm"), ("config.model.activation", "act"),
                          ("config.model.dropout", "dropout")):
        value = _get(t, column)
        if value is not None and value not in ("none", "relu", 0.0):
            parts[-1] += f" {short}={value:g}" if isinstance(value, float) else \
                f" {short}={value}"
    opt = f"{t['config.optimizer.name']} lr={t['config.optimizer.lr']:g}"
    if t["config.optimizer.name"] == "sgd" and _get(t, "config.optimizer.momentum") is not None:
        opt += f" mom={t['config.optimizer.momentum']:g}"
    if _get(t, "config.optimizer.weight_decay"):
        opt += f" wd={t['config.optimizer.weight_decay']:g}"
    if _get(t, "config.optimizer.grad_clip"):
        opt += f" clip={t['config.optimizer.grad_clip']:g}"
    parts.append(opt)
    parts.append(f"{t['config.schedule.name']}")
    batch = f"bs={int(t['config.batch_size'])}"
    rule = _get(t, "config.batch_scaling.rule")
    if rule not in (None, "none"):
        batch += (f" scaling={rule}/{int(t['config.batch_scaling.reference_batch_size'])}"
                  f" effective_lr={_get(t, 'effective_lr', math.nan):.3g}")
    parts.append(batch)
    return "  ".join(parts)


def _flow(value) -> str:
    """A spec's section on one line (YAML flow style)."""
    import yaml

    return yaml.safe_dump(value, default_flow_style=True, width=10**6, sort_keys=False).strip()


def _data_summary(train, searched=None) -> str:
    """What the data set holds: rows, features, classes or the target's spread."""
    import numpy as np

    dataset = train.dataset
    if dataset.name == "digits":
        return "scikit-learn digits: 1797 images of 8x8 pixels (0..16, scaled to 0..1), 10 classes"
    if dataset.name == "synthetic":
        return (f"sklearn make_classification: {dataset.n_samples} rows, {dataset.n_features}"
                f" features ({max(2, dataset.n_features // 2)} informative), "
                f"{dataset.n_classes} classes, {dataset.noise:.0%} of the labels flipped")
    if dataset.name != "table":
        return dataset.name
    frame = pd.read_parquet(dataset.path) if dataset.path.endswith(".parquet") else \
        pd.read_csv(dataset.path)
    target = frame.pop(dataset.label)
    features = frame.select_dtypes("number")
    scaling = ("standardized by the training split" if dataset.standardize else "fed raw")
    if searched and "dataset.standardize" in searched:
        scaling = "standardized or fed raw: searched"
    text = (f"{Path(dataset.path).name}: {len(frame)} rows, {features.shape[1]} numeric "
            f"features (sd {features.std().min():.3g} .. {features.std().max():.3g}, "
            f"{scaling})")
    if train.task == "regression":
        y = target.to_numpy(dtype=float)
        return text + (f", target {dataset.label!r}: mean {y.mean():.4g} sd {y.std():.4g}"
                       f" range {y.min():.4g} .. {y.max():.4g} (not scaled)")
    shares = target.value_counts(normalize=True)
    return text + (f", {len(shares)} classes in {dataset.label!r} (shares "
                   f"{shares.max():.0%} .. {shares.min():.0%}, median "
                   f"{float(np.median(shares)):.0%})")


def _sweep_header(sweep: str) -> list[str]:
    """The sweep's spec as written (no comments) and what it leaves to defaults that shape
    the curves: the data, the validation share, warmup and each schedule family's options,
    early stopping's min_delta, the scheduler."""
    import yaml

    path = HERE / "specs" / f"{sweep}.yaml"
    if not path.exists():
        return [f"## sweep {sweep} (no spec)"]
    raw = yaml.safe_load(path.read_text())
    spec = _load_spec(path)
    train = spec.train
    families = set(raw.get("search_space", {}).get("schedule.name", {}).get("grid", [])) \
        | {train.schedule.name}
    options = {"step": ["step_size", "gamma"], "multistep": ["milestones", "gamma"],
               "exponential": ["gamma"], "cosine": ["eta_min"],
               "cosine_restarts": ["T_0", "T_mult", "eta_min"],
               "onecycle": ["pct_start", "div_factor", "final_div_factor"],
               "linear": ["end_factor"], "plateau": ["factor", "patience", "threshold"]}
    schedule = {"warmup_epochs": train.schedule.warmup_epochs}
    for family in sorted(families):
        schedule.update({f"{family}.{o}": getattr(train.schedule, o)
                         for o in options.get(family, [])})
    lines = [f"## sweep {sweep}: metric {spec.metric} ({spec.mode}), "
             f"{spec.num_samples} sample(s), seed {spec.seed}",
             f"   data: {_data_summary(train, spec.search_space)}; validation share "
             f"{train.dataset.val_fraction:g}",
             f"   train: {_flow(raw.get('train', {}))}",
             f"   search_space: {_flow(raw.get('search_space', {}))}",
             f"   scheduler: {_flow(raw.get('scheduler', {}))}  searcher: "
             f"{_flow(raw.get('searcher', {}))}",
             f"   schedule options: {_flow(schedule)}; early_stopping.min_delta "
             f"{train.early_stopping.min_delta:g}; label_smoothing {train.label_smoothing:g};"
             f" grad_clip {train.optimizer.grad_clip}; nesterov {train.optimizer.nesterov}"]
    return lines


def show(only: str | None, split: str | None = None, headers: bool = False) -> None:
    curves, trials = pd.read_parquet(CURVES), pd.read_parquet(TRIALS)
    shown_sweep = None
    for _, t in trials.iterrows():
        if only and not fnmatch.fnmatchcase(t["sweep"], only):
            continue
        if split and _get(t, "split", "dev") != split:
            continue
        if headers and t["sweep"] != shown_sweep:
            shown_sweep = t["sweep"]
            print("\n".join(_sweep_header(shown_sweep)))
        c = curves[curves["curve_id"] == t["curve_id"]].sort_values("epoch")
        patience = _get(t, "config.early_stopping.patience")
        print(f"== {t['curve_id']}  [{_get(t, 'split', 'dev')}]  {_setup(t)}")
        print(f"   stop={t['stop_reason']} epochs={t['epochs']}/{t['config.epochs']}"
              f" early_stopping={'off' if patience is None else f'patience {patience:g}'}"
              f" metric={t['metric']} ({t['mode']})")
        if _get(t, "config.task", "classification") == "regression":  # no accuracy
            print(f"   init loss {t['initial_val_loss']:.3g}"
                  f" | chance loss {t['chance_val_loss']:.3g}")
        else:
            print(f"   init loss {t['initial_val_loss']:.3g} acc {t['initial_val_acc']:.3g}"
                  f" | chance loss {t['chance_val_loss']:.3g} acc {t['chance_val_acc']:.3g}")
        # rows named as before; wider where the signals' longer names come too
        width = 15 if any(column in c and c[column].notna().any()
                          for column in SIGNAL_COLUMNS) else 10
        for column in CURVE_COLUMNS[2:]:
            if column in ("val_acc", "val_mae", "val_r2", *SIGNAL_COLUMNS) and (
                    column not in c or c[column].isna().all()):
                continue  # a regression reports no val_acc, a classification no mae/r2;
                # older builds and shallow nets no signals
            series = _signal_series if column in SIGNAL_COLUMNS else _series
            print(f"   {column:{width}s} {series(c[column])}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="one sweep (a spec's file name without .yaml)")
    parser.add_argument("--show", nargs="?", const="", metavar="SWEEP",
                        help="print the curves (of one sweep, or a glob of sweeps such as "
                             "'ho-*') instead of building")
    parser.add_argument("--split", choices=SPLITS,
                        help="with --show: only the curves of one split")
    parser.add_argument("--headers", action="store_true",
                        help="with --show: before each sweep's curves, its spec's settings "
                             "and its data")
    args = parser.parse_args()
    if args.show is not None:
        show(args.show or None, args.split, args.headers)
    else:
        build(args.only)
