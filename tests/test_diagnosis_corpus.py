"""The curve diagnosis against a person's labels on real curves (tests/data/diagnosis).

The corpus holds the history rows of real sweeps (digits and synthetic; lr 1e-6 to 200,
every schedule family, one-unit to 1024-wide models, ASHA-stopped trials), built by
tests/data/diagnosis/build.py, and labels.yaml says what a person read in each curve.
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


@pytest.fixture(scope="module")
def judged() -> list[tuple[str, str, str, str]]:
    """(curve_id, person's label, diagnosis label, diagnosis reason) for every curve."""
    curves = pd.read_parquet(CORPUS / "curves.parquet")
    trials = pd.read_parquet(CORPUS / "trials.parquet")
    labels = yaml.safe_load((CORPUS / "labels.yaml").read_text())
    assert set(labels) == set(trials["curve_id"]), "every curve labelled, every label a curve"
    history = {cid: rows.to_dict("records") for cid, rows in curves.groupby("curve_id")}
    out = []
    for trial in trials.to_dict("records"):
        found = diagnose(history[trial["curve_id"]], trial, trial["metric"], trial["mode"])
        out.append((trial["curve_id"], labels[trial["curve_id"]][0], found.label, found.reason))
    return out


def confusion_table(judged) -> str:
    counts = collections.Counter((person, fn) for _, person, fn, _ in judged)
    width = max(map(len, LABELS)) + 1
    lines = ["person \\ diagnosis".ljust(width + 2) + "".join(x[:11].rjust(12) for x in LABELS)]
    for person in LABELS:
        lines.append(person.ljust(width + 2) +
                     "".join(str(counts[(person, fn)] or ".").rjust(12) for fn in LABELS))
    return "\n".join(lines)


def test_corpus_is_big_enough_and_covers_every_label(judged):
    assert len(judged) >= 60
    assert {person for _, person, _, _ in judged} == set(LABELS)


def test_diagnosis_agrees_with_the_labels(judged):
    table = confusion_table(judged)
    disagreements = "\n".join(f"  {cid}: person {p}, diagnosis {f}: {reason}"
                              for cid, p, f, reason in judged if p != f)
    print(f"\n{table}\n{disagreements}")
    agreement = sum(p == f for _, p, f, _ in judged) / len(judged)
    assert agreement >= 0.90, f"agreement {agreement:.1%}\n{table}\n{disagreements}"


def test_no_healthy_curve_raises_an_alarm(judged):
    alarms = [(cid, f, reason) for cid, p, f, reason in judged if p == "healthy" and f in ALARMS]
    assert not alarms


def test_every_diagnosis_says_why_with_numbers(judged):
    for cid, _, label, reason in judged:
        assert label in LABELS
        assert reason and any(ch.isdigit() for ch in reason), (cid, reason)


def test_diagnosis_imports_without_torch_or_ray():
    code = ("import sys, orchestrator.diagnosis; "
            "print(sorted(m for m in ('torch', 'ray') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).parent.parent)
    assert out.stdout.strip() == "[]"
