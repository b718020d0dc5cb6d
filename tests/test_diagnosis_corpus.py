"""The curve diagnosis against a person's labels on real curves (tests/data/diagnosis).

The corpus holds the history rows of real sweeps (digits, synthetic and tabular data;
classification and regression; lr 1e-6 to 200, every schedule family, one-unit to
1024-wide MLPs, CNNs and ResNets with and without normalisation, ASHA-stopped trials),
built by tests/data/diagnosis/build.py; labels.yaml says what a person read in each curve
(`[label, reason]`, or `[label, reason, second accepted label]` where a curve honestly
reads two ways). trials.parquet's `split` puts each curve in a part: `dev`, which the
rules were tuned on; `heldout` to `heldout8`, each labelled blind and committed before
the rules were run on it, measured once, and tuned on since (development data now);
`dev_signals`, the first batch with the training's own signals (issue #33: grad_norm,
update_ratio, grad_norm_ratio), labelled blind and tuned on; and `heldout9`, signals
too, labelled blind by two people (labels_h9_first.yaml, labels_h9_second.yaml, sealed
apart from labels.yaml until the rules were final) and never tuned on: the held-out part
(docs/diagnosis.md). Until its labels are in labels.yaml the held-out checks are
skipped, and the diagnosis is not run on its curves at all.
"""

from __future__ import annotations

import collections
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from orchestrator.diagnosis import LABELS, diagnose

CORPUS = Path(__file__).parent / "data" / "diagnosis"
# a well-tuned or healthy curve must never read as one of these
ALARMS = {"lr_too_high", "diverged", "lr_too_low"}
# The parts of the corpus, by trials.parquet's `split`. Each held-out batch was labelled
# blind and committed before the rules were ever run on it, then measured once after a
# round of tuning; once measured it is tuned on, and so becomes development data:
#   heldout   measured at 64/72 (88.9%) after the first round (2026-11-30, 9cc4fcd..)
#   heldout2  labelled in 7f83821, measured at 75/90 (83.3%) after 2e9ef89, tuned on in 1b10f26
#   heldout3  labelled in c117bdb, measured at 73/82 (89.0%) after 1b10f26, tuned on in 10f3a84
#   heldout4  labelled in d3a86e4, measured at 74/87 (85.1%) after 10f3a84 (3155375: four
#             healthy curves read lr_too_low, three of them "stalled once the schedule had
#             decayed the rate"; recorded then as strict expected failures), tuned on since
#   heldout5  labelled in 9ea6f3f (a second labeller's in 36aa964), measured once after
#             da7f4ff's rules (2026-11-30, 605c25f): 80/88 (90.9%; against the second
#             labeller 78/88), and one healthy alarm (h5-spheres-capacity/05, labelled healthy,
#             its labeller also accepting lr_too_low, read lr_too_low); tuned on since
#   heldout6  labelled in 5eca095 (a second labeller's in da26e7d), measured once after
#             2ae2956's rules (2026-11-30): 73/83 (88.0% < 90%; against the second labeller
#             72/83), and five curves labelled healthy read as alarms (two of them with
#             no second label: h6-exponential-corr5/02 lr_too_low, "stalled once the schedule
#             had decayed the rate"; h6-cnn-smoothing/04, h6-exponential-corr5/03,
#             h6-mlp-narrow-deep/02, h6-plant-huber-raw/03 accept the alarm as a second
#             reading); tuned on since (the decayed-stall rule narrowed to runs far from
#             done that the rate held back, a validation loss still reaching new lows
#             through its swings no longer unstable)
#   heldout7  labelled in fca32ea (a second labeller's in 0f68af6), measured once after
#             8d26f05's rules (2026-11-30): 73/78 (93.6%; against the second labeller
#             74/78), and two curves labelled healthy read as alarms, each with the alarm
#             accepted as a second reading by both labellers (h7-cancer-dropout-es/04
#             lr_too_high, h7-energy-mse-adam/03 lr_too_low); tuned on since (alarms need
#             strong evidence: swings of SWING_FLOOR of the unsure loss, a gain still ahead
#             of FAR_TO_GAIN of it)
#   heldout8  labelled in ee46b7e (a second labeller's in 91f00a2), measured once after
#             0d47660's rules (2026-11-30): 62/68 (91.2%; against the second labeller
#             60/68), no curve labelled healthy read as an alarm; tuned on since (as
#             development data beside dev_signals; no rule on the curves alone changed)
#   dev_signals  the s- sweeps, the first curves with the training's signals, labelled
#             blind in 49622f6 (one labeller) before the diagnosis ran on them: the
#             rules that read the signals were set on them (issue #33)
#   heldout9  the h9- sweeps, with signals, labelled blind by two labellers in 49622f6
#             (sealed in labels_h9_first.yaml and labels_h9_second.yaml until the rules
#             were final; the first moved into labels.yaml in 3d889f0), measured once
#             after 52061d7's rules (2026-12-07): 50/65 (76.9% < 93%; 43 on the primary
#             label; against the second labeller 48/65, 73.8%; the curves alone, the
#             signals taken out, 41/65 and 39/65), and two curves labelled healthy read
#             as alarms: THE held-out part
DEVELOPMENT = ("dev", "heldout", "heldout2", "heldout3", "heldout4", "heldout5", "heldout6",
               "heldout7", "heldout8", "dev_signals")
HELD_OUT = "heldout9"
# the batches built with the training's signals (every other curve has none)
WITH_SIGNALS = ("dev_signals", "heldout9")
# the agreement each part must reach (issues #21 and #33), counting a diagnosis that
# equals the person's label or their second accepted one. Issue #33 asks 96% of the
# development data while the curves without signals read exactly as before: 38 of their
# 814 disagree, so 843/881 (95.7%) is the most the signals can reach; 95% stays the bar.
REQUIRED = {"development": 0.95, "held-out": 0.93}
# What a held-out measurement fell short of, recorded as strict expected failures (so
# CI stays green, and the mark must go once a change makes them pass), by part: e.g.
# {"held-out": "<curve>, labelled healthy, read lr_too_low: issue #21 open"}. Empty while
# the held-out part is not yet measured; tuning on a measured batch makes it development
# data, and the next fresh batch is then the held-out part.
HEALTHY_ALARMED: dict[str, str] = {"held-out": (
    "heldout9, measured once after 52061d7: h9-multiclass-tanh-depth-adam/03 read lr_too_low "
    "and h9-resnet-norm-adam/02 read lr_too_high, both labelled healthy (the first labeller "
    "accepting the alarm as a second reading, the second labeller not): issue #33 open")}
HELD_OUT_SHORT: dict[str, str] = {"held-out": (
    "heldout9, measured once after 52061d7: 50/65 (76.9%) agree, 93% required (against the "
    "second labeller 48/65, 73.8%): six corr5-capacity-sgd runs labelled healthy or "
    "lr_too_high read underfitting (5) or overfitting; vanishing_gradients read on two "
    "sigmoid regressions labelled lr_too_low and missed on three nets that learned (two "
    "deep GELU nets with batch norm); four runs labelled lr_too_high read healthy (2), "
    "overfitting or diverged: issue #33 open")}
# Batches built and waiting for their blind labels: not diagnosed at all until labelled
# and named by DEVELOPMENT or HELD_OUT above (none now).
AWAITING_LABELS: tuple[str, ...] = ()


def part_of(split: str) -> str:
    return "held-out" if split == HELD_OUT else "development"


class Judged(collections.namedtuple("Judged", "curve split person accepted label reason")):
    @property
    def agrees(self) -> bool:
        return self.label in self.accepted


@pytest.fixture(scope="module")
def labels() -> dict[str, list[str]]:
    return yaml.safe_load((CORPUS / "labels.yaml").read_text())


@pytest.fixture(scope="module")
def trials() -> pd.DataFrame:
    return pd.read_parquet(CORPUS / "trials.parquet")


@pytest.fixture(scope="module")
def held_out_labelled(labels, trials) -> bool:
    """Are the held-out curves labelled? All of them or none: labels come in one commit,
    before the diagnosis is ever run on them."""
    ids = set(trials.loc[trials["split"] == HELD_OUT, "curve_id"])
    labelled = ids & set(labels)
    assert labelled in (set(), ids), \
        f"{len(labelled)} of {len(ids)} {HELD_OUT} curves labelled: label all, then commit"
    return bool(ids) and labelled == ids


@pytest.fixture(scope="module")
def judged(labels, trials, held_out_labelled) -> list[Judged]:
    """Every labelled curve: its part, the person's label and the labels they accept, and
    the diagnosis with its reason (about a second for the whole corpus). The curves of a
    held-out part not yet labelled are not diagnosed at all."""
    parts = {*DEVELOPMENT, *([HELD_OUT] if held_out_labelled else [])}
    trials = trials[trials["split"].isin(parts)]
    curves = pd.read_parquet(CORPUS / "curves.parquet")
    curves = curves[curves["curve_id"].isin(set(trials["curve_id"]))]
    assert set(trials["curve_id"]) <= set(labels), "every curve of a part labelled"
    history = {cid: rows.to_dict("records") for cid, rows in curves.groupby("curve_id")}
    out = []
    for trial in trials.to_dict("records"):
        cid = trial["curve_id"]
        person, _, *second = labels[cid]
        found = diagnose(history[cid], trial, trial["metric"], trial["mode"])
        out.append(Judged(cid, trial["split"], person, {person, *second}, found.label,
                          found.reason))
    return out


def in_part(judged: list[Judged], part: str, held_out_labelled: bool) -> list[Judged]:
    if part == "held-out" and not held_out_labelled:
        pytest.skip(f"{HELD_OUT} not labelled yet: the held-out part is measured once its "
                    f"blind labels are committed")
    return [j for j in judged if part_of(j.split) == part]


def confusion_table(judged: list[Judged]) -> str:
    """Rows: the person's (primary) label; columns: the diagnosis."""
    counts = collections.Counter((j.person, j.label) for j in judged)
    width = max(map(len, LABELS)) + 1
    lines = ["person \\ diagnosis".ljust(width + 2) + "".join(x[:11].rjust(12) for x in LABELS)]
    for person in LABELS:
        lines.append(person.ljust(width + 2) +
                     "".join(str(counts[(person, fn)] or ".").rjust(12) for fn in LABELS))
    return "\n".join(lines)


def test_corpus_is_big_enough_and_covers_every_label(judged, labels, trials):
    development = [j for j in judged if part_of(j.split) == "development"]
    assert len(development) >= 200
    # every label used, as the first reading or an accepted second one: no development
    # curve's first label is exploding_gradients (two that overflowed in their first
    # epoch read diverged, exploding accepted: a gradient gone in one epoch shows no
    # growth across epochs)
    assert {label for j in development for label in j.accepted} == set(LABELS), \
        "every label used"
    assert set(DEVELOPMENT) <= set(trials["split"]) <= {*DEVELOPMENT, HELD_OUT,
                                                          *AWAITING_LABELS}
    assert set(WITH_SIGNALS) <= {*DEVELOPMENT, HELD_OUT, *AWAITING_LABELS}
    assert set(labels) <= set(trials["curve_id"]), "every label a curve"
    for cid, entry in labels.items():
        assert entry[0] in LABELS and len(entry) in (2, 3), (cid, entry)
        assert all(extra in LABELS for extra in entry[2:]), (cid, entry)


@pytest.mark.parametrize("split", AWAITING_LABELS)
def test_a_batch_awaiting_its_blind_labels_is_labelled_whole_or_not_at_all(labels, trials,
                                                                          judged, split):
    """Labels come in one commit, before the diagnosis is ever run on a batch; until
    then it is not diagnosed (its curves are in no part)."""
    ids = set(trials.loc[trials["split"] == split, "curve_id"])
    labelled = ids & set(labels)
    assert labelled in (set(), ids), \
        f"{len(labelled)} of {len(ids)} {split} curves labelled: label all, then commit"
    assert not ids & {j.curve for j in judged}, f"{split} diagnosed before it is a part"
    if not ids:
        pytest.skip(f"{split}: not built")
    if not labelled:
        pytest.skip(f"{split}: {len(ids)} curves awaiting blind labels, not diagnosed")


def test_the_signals_are_in_the_batches_built_with_them_and_null_before(trials):
    """Every curve of the batches built with the training's signals has them (a value at
    some epoch); every curve built before has none (its rows unchanged)."""
    curves = pd.read_parquet(CORPUS / "curves.parquet")
    signals = ["grad_norm", "grad_norm_max", "update_ratio", "grad_norm_ratio"]
    assert set(signals) <= set(curves.columns)
    split = trials.set_index("curve_id")["split"]
    recorded = curves.groupby("curve_id")["grad_norm"].apply(lambda v: v.notna().any())
    with_signals = split.isin(WITH_SIGNALS)
    assert recorded[with_signals[with_signals].index].all()
    assert not recorded[with_signals[~with_signals].index].any()
    before = curves[curves["curve_id"].isin(with_signals[~with_signals].index)]
    assert before[signals].isna().all().all()


@pytest.mark.parametrize("part", [
    pytest.param(part, marks=pytest.mark.xfail(reason=HELD_OUT_SHORT[part], strict=True))
    if part in HELD_OUT_SHORT else part for part in REQUIRED])
def test_diagnosis_agrees_with_the_labels(judged, held_out_labelled, part):
    judged_here = in_part(judged, part, held_out_labelled)
    agreeing = sum(j.agrees for j in judged_here)
    splits = sorted({j.split for j in judged_here})
    per_split = ", ".join(
        f"{split} {sum(j.agrees for j in judged_here if j.split == split)}/"
        f"{sum(j.split == split for j in judged_here)}" for split in splits)
    table = confusion_table(judged_here)
    disagreements = "\n".join(
        f"  {j.curve}: person {'/'.join([j.person, *sorted(j.accepted - {j.person})])}, "
        f"diagnosis {j.label}: {j.reason}" for j in judged_here if not j.agrees)
    summary = (f"{part}: {agreeing}/{len(judged_here)} agree "
               f"({agreeing / len(judged_here):.1%}; {per_split}), "
               f"{sum(j.person == j.label for j in judged_here)} on the primary label")
    print(f"\n{summary}\n{table}\n{disagreements}")
    assert agreeing / len(judged_here) >= REQUIRED[part], \
        f"{summary}\n{table}\n{disagreements}"


@pytest.mark.parametrize("part", [
    pytest.param(part, marks=pytest.mark.xfail(reason=HEALTHY_ALARMED[part], strict=True))
    if part in HEALTHY_ALARMED else part for part in REQUIRED])
def test_no_healthy_curve_raises_an_alarm(judged, held_out_labelled, part):
    alarms = [(j.curve, j.label, j.reason) for j in in_part(judged, part, held_out_labelled)
              if j.person == "healthy" and j.label in ALARMS]
    assert not alarms


def test_none_of_the_error_kinds_issue_21_names(judged, trials):
    """The mechanisms issue #21 found wrong, checked on every diagnosed curve of the
    corpus (development and held-out alike); a reading the labeller accepts (a second
    label) is not an error."""
    curves = pd.read_parquet(CORPUS / "curves.parquet")
    history = {cid: rows.sort_values("epoch") for cid, rows in curves.groupby("curve_id")}
    trial = trials.set_index("curve_id")
    wrong = []
    for j in judged:
        t, h = trial.loc[j.curve], history[j.curve]
        # a slow, steady fall read as diverged
        if j.agrees:
            continue
        if j.person == "lr_too_low" and j.label == "diverged":
            wrong.append((j.curve, "slow fall read diverged"))
        # a run that learned, then fell back to the chance level: a rate too high,
        # whatever followed (never healthy, never a capacity limit)
        chance = t["chance_val_acc"]
        if t["metric"] == "val_acc" and chance == chance and len(h) >= 3:
            acc = h["val_acc"].to_numpy()
            gain = acc.max() - chance
            if gain > 0.3 * (1 - chance) and acc[-1] - chance < 0.15 * gain \
                    and j.label not in ("lr_too_high", "diverged"):
                wrong.append((j.curve, f"learned, then collapsed to chance, read {j.label}"))
        # the validation loss rising for good while the train loss falls, read as a rate
        # too low
        if j.person == "overfitting" and j.label == "lr_too_low":
            wrong.append((j.curve, "overfitting read lr_too_low"))
        # a short planned run still improving, read healthy
        if t["stop_reason"] == "completed" and t["epochs"] <= 5 and j.label == "healthy" \
                and j.person in ("lr_too_low", "too_short"):
            wrong.append((j.curve, "short run still improving read healthy"))
        # a capacity limit claimed for a loss that never moved from the chance level
        if j.label == "underfitting" and t["metric"] in ("val_acc",):
            train = h["train_loss"].to_numpy()
            if abs(train[0] - train[-1]) < 0.01 * t["chance_val_loss"]:
                wrong.append((j.curve, "a loss that never moved read underfitting"))
    assert not wrong


def test_every_diagnosis_says_why_with_numbers(judged):
    for j in judged:
        assert j.label in LABELS
        assert j.reason and any(ch.isdigit() for ch in j.reason), (j.curve, j.reason)


def test_diagnosis_imports_without_torch_or_ray():
    code = ("import sys, orchestrator.diagnosis; "
            "print(sorted(m for m in ('torch', 'ray') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).parent.parent)
    assert out.stdout.strip() == "[]"
