"""Evidence across trials (`orchestrator.analysis.evidence`), on hand-built trials whose
curves the diagnosis reads as intended: every claim with its counts, none below the
minimum of evidence, the rate read before the other keys and with the batch size."""

from __future__ import annotations

import html
import itertools
import random
from math import comb

import numpy as np
import pytest

from orchestrator.analysis.evidence import evidence
from orchestrator.analysis.evidence.chance import all_chance, span_chance, tail_chance
from orchestrator.analysis.evidence.thresholds import MIN_TRIALS
from tests.built_sweeps import EPOCHS, Made, log_spaced, tables


def spec(space: dict, scaling: str = "none", **changes) -> dict:
    base = {"name": "made", "metric": "val_acc", "mode": "max",
            "train": {"epochs": EPOCHS, "batch_scaling": {"rule": scaling,
                                                          "reference_batch_size": 32}},
            "scheduler": {"name": "fifo"}, "search_space": space}
    return {**base, **changes}


def found(made: list[Made], space: dict, **changes):
    trials, history = tables(made)
    return evidence(trials, spec(space, **changes), history)


def key_of(ev, key: str):
    (one,) = [k for k in ev.keys if k.key == key]
    return one


def rules(key_evidence) -> list[str]:
    return [c.rule for c in key_evidence.claims]


LR = {"optimizer.lr": {"loguniform": [1e-4, 0.1]}}


def test_no_claim_below_the_minimum_of_evidence():
    made = [Made({"optimizer.lr": lr}, score=0.5 + 0.04 * i)
            for i, lr in enumerate(log_spaced(1e-4, 0.1, MIN_TRIALS - 1))]
    ev = found(made, LR)
    assert ev.keys == () and ev.sentences() == []
    assert ev.note == f"{MIN_TRIALS - 1} trials ended without error; a claim needs 8 at least"


def test_the_best_at_the_upper_edge_of_a_log_range_widens_it_upward():
    lrs = log_spaced(1e-4, 0.1, 12)
    made = [Made({"optimizer.lr": lr}, score=0.5 + 0.04 * i) for i, lr in enumerate(lrs)]
    lr = key_of(found(made, LR), "optimizer.lr")
    assert ("the best trial (val_acc 0.94) and 2 of the best 3 have optimizer.lr in the top "
            "tenth of its range [0.0001, 0.1] (log axis): widen it upward") in \
        [c.sentence for c in lr.claims]
    (kind, (low, high)), = lr.after.items()
    assert kind == "loguniform" and high > 0.1 and 1e-4 < low < lrs[9]  # moved, log kept
    assert lr.where == ("the best 3 trials have optimizer.lr 0.0285-0.1, in the upper third "
                        "of [0.0001, 0.1] (log axis)")


def test_a_low_region_where_every_trial_never_beat_chance_is_cut():
    lrs = log_spaced(1e-5, 0.1, 14)
    made = [Made({"optimizer.lr": lr}, "chance" if i < 6 else "good",
                 score=0.9 - 0.03 * abs(i - 10)) for i, lr in enumerate(lrs)]
    lr = key_of(found(made, {"optimizer.lr": {"loguniform": [1e-5, 0.1]}}), "optimizer.lr")
    edge = f"{lrs[5]:.3g}"
    assert f"6 of 6 trials with optimizer.lr <= {edge} never beat chance: cut optimizer.lr " \
           f"up to {edge}" in [c.sentence for c in lr.claims]
    assert lr.after["loguniform"][0] >= float(edge)


def test_a_high_region_where_every_trial_diverged_is_cut():
    lrs = log_spaced(1e-3, 10, 12)
    made = [Made({"optimizer.lr": lr}, "diverged" if i >= 8 else "good",
                 score=0.6 + 0.03 * i) for i, lr in enumerate(lrs)]
    lr = key_of(found(made, {"optimizer.lr": {"loguniform": [1e-3, 10]}}), "optimizer.lr")
    edge = f"{lrs[8]:.3g}"
    assert f"4 of 4 trials with optimizer.lr >= {edge} diverged: cut optimizer.lr from " \
           f"{edge}" in [c.sentence for c in lr.claims]
    assert lr.after["loguniform"][1] <= float(edge)
    assert "edge" not in rules(lr)  # the best sits below a dead end, not at an edge


def test_a_rate_far_too_low_makes_no_other_key_look_dead():
    """Eleven trials at low rates never beat chance, and happen to hold the highest
    dropouts: the rate is their cause, so dropout is read without them."""
    lrs = log_spaced(1e-6, 0.1, 16)
    made = [Made({"optimizer.lr": lr, "model.dropout": (0.3 + 0.02 * i if i < 11
                                                         else 0.05 * (i - 11))},
                 "chance" if i < 11 else "good", score=0.8 + 0.01 * i)
            for i, lr in enumerate(lrs)]
    space = {"optimizer.lr": {"loguniform": [1e-6, 0.1]},
             "model.dropout": {"uniform": [0.0, 0.5]}}
    ev = found(made, space)
    assert "dead" in rules(key_of(ev, "optimizer.lr"))
    dropout = key_of(ev, "model.dropout")
    assert dropout.claims == () and not dropout.changed
    # without the rate searched the same dropouts do read dead: the test above is not empty
    alone = found(made, {"model.dropout": {"uniform": [0.0, 0.5]}})
    assert "dead" in rules(key_of(alone, "model.dropout"))


def test_failures_all_over_say_nothing_of_where_they_fall():
    """17 of 20 trials never beat chance: a run of five of them at either end of a key
    is what chance gives (DEAD_CHANCE), not a dead region."""
    made = [Made({"model.hidden": 10 + 5 * i}, "good" if i in (5, 11, 14) else "chance")
            for i in range(20)]
    ev = found(made, {"model.hidden": {"randint": [10, 105]}})
    assert "dead" not in rules(key_of(ev, "model.hidden"))


def test_a_batch_that_diverged_only_at_a_scaled_rate_too_high_is_kept():
    """Under sqrt scaling batch 512 runs 4x the rate of batch 32: its trials diverged
    where the effective rate did, at any batch; the batch is not dropped."""
    made = [Made({"optimizer.lr": lr, "batch_size": b}, score=0.7 + lr, effective_lr=lr *
                 (b / 32) ** 0.5)
            for lr in (0.01, 0.03, 0.1, 0.2, 0.3) for b in (32, 64)]
    made += [Made({"optimizer.lr": lr, "batch_size": 512}, "diverged", effective_lr=lr * 4)
             for lr in (0.12, 0.18, 0.25, 0.3)]
    space = {"optimizer.lr": {"loguniform": [0.01, 0.3]},
             "batch_size": {"choice": [32, 64, 512]}}
    ev = found(made, space, train={"epochs": EPOCHS,
                                   "batch_scaling": {"rule": "sqrt", "reference_batch_size": 32}})
    assert not key_of(ev, "batch_size").changed
    assert ("4 of 4 trials with effective_lr >= 0.48 diverged, at batch sizes 512: keep the "
            "scaled rate below it") in [c.sentence for c in key_of(ev, "optimizer.lr").claims]
    # the same trials with no scaling (the rate the same at every batch): 512 is dropped
    flat = [Made(m.config, m.outcome, m.score, effective_lr=m.config["optimizer.lr"])
            for m in made]
    batch = key_of(found(flat, space), "batch_size")
    assert batch.after == {"choice": [32, 64]}
    assert "4 of 4 trials with batch_size=512 diverged: drop 512" in \
        [c.sentence for c in batch.claims]


def test_a_batch_whose_failures_lie_outside_the_good_rates_is_kept_with_why():
    made = [Made({"optimizer.lr": lr, "batch_size": b}, score=0.7 + lr, effective_lr=lr)
            for lr in (0.02, 0.05, 0.1) for b in (32, 64)]
    # batch 128's trials failed at effective rates both below and above the good ones
    made += [Made({"optimizer.lr": lr, "batch_size": 128}, "chance", effective_lr=e)
             for lr, e in ((0.03, 0.001), (0.04, 0.002), (0.06, 0.9), (0.08, 1.2))]
    space = {"optimizer.lr": {"loguniform": [0.01, 0.2]},
             "batch_size": {"choice": [32, 64, 128]}}
    batch = key_of(found(made, space), "batch_size")
    assert not batch.changed
    (claim,) = batch.claims
    assert claim.rule == "kept" and claim.sentence == (
        "4 of 4 trials with batch_size=128 never beat chance, but all at effective_lr "
        "0.001-1.2, outside every good trial's (0.05-0.1): the scaled rate, not the batch, "
        "explains it; keep 128")


def test_a_choice_whose_trials_all_never_beat_chance_is_dropped():
    made = [Made({"model.activation": a}, "chance" if a == "tanh" else "good",
                 score=0.8 + 0.01 * i)
            for i, a in enumerate(["relu", "gelu", "tanh", "relu"] * 4)]
    ev = found(made, {"model.activation": {"choice": ["relu", "tanh", "gelu"]}})
    activation = key_of(ev, "model.activation")
    assert activation.after == {"choice": ["relu", "gelu"]}
    assert activation.claims[0].sentence == ("4 of 4 trials with model.activation=tanh never "
                                             "beat chance: drop tanh")


def test_the_best_at_the_largest_numeric_choice_adds_the_next():
    made = [Made({"batch_size": b}, score={16: 0.6, 32: 0.7, 64: 0.8}[b] + 0.01 * i)
            for i, b in enumerate([16, 32, 64] * 4)]
    batch = key_of(found(made, {"batch_size": {"choice": [16, 32, 64]}}), "batch_size")
    assert batch.after == {"choice": [16, 32, 64, 128]}
    assert batch.claims[-1].sentence.endswith("used the largest batch_size (64): add 128")


def test_an_edge_the_trainable_refuses_to_widen_past_is_kept_and_says_why():
    made = [Made({"model.depth": d}, score=0.9 - 0.1 * d + 0.001 * i)
            for i, d in enumerate([1, 2, 3, 4] * 3)]
    depth = key_of(found(made, {"model.depth": {"randint": [1, 4]}}), "model.depth")
    assert depth.after["randint"][0] == 1  # narrowed around the best, not below 1
    (claim,) = [c for c in depth.claims if c.rule == "limit"]
    assert claim.sentence.endswith("widen it downward, but cannot: value 0 is invalid for "
                                   "train.model.depth: is 0, but must be >= 1")


def test_a_key_with_no_measurable_effect_says_so_and_keeps_its_range():
    # the best three spread over the whole range: as spread as chance makes them
    made = [Made({"model.dropout": round(0.03 * i, 2)},
                 score=0.95 if i in (0, 7, 15) else 0.8 + 0.001 * i) for i in range(16)]
    dropout = key_of(found(made, {"model.dropout": {"uniform": [0.0, 0.5]}}), "model.dropout")
    assert rules(dropout) == ["no_effect"] and not dropout.changed
    assert dropout.claims[0].sentence == (
        "no measurable effect of model.dropout on val_acc: the best 3 trials spread over 16 "
        "of 16 trials' values (as close by chance 100% of the time); keep it searched, or "
        "fix it")


def test_random_results_rarely_move_the_space():
    """Scores independent of every setting: the rules' chance guards keep the share of
    sweeps whose space moves small (each rule errs at most about 5% of the time)."""
    moved = 0
    for seed in range(40):
        rng = np.random.default_rng(seed)
        made = [Made({"optimizer.lr": float(10 ** rng.uniform(-4, -1)),
                      "batch_size": int(rng.choice([32, 64, 128])),
                      "model.dropout": float(rng.uniform(0, 0.5))},
                     score=float(rng.uniform(0.5, 0.9))) for _ in range(16)]
        ev = found(made, {**LR, "batch_size": {"choice": [32, 64, 128]},
                          "model.dropout": {"uniform": [0.0, 0.5]}})
        moved += bool(ev.changed)
    assert moved <= 10, moved


def test_trials_cut_short_before_the_good_ones_beat_chance_did_not_fail():
    """ASHA stopped the low-rate trials at epoch 2, when the good ones (slow learners)
    had not beaten chance either: no evidence that those rates fail."""
    lrs = log_spaced(1e-5, 0.1, 12)

    def made(stopped_at: int) -> list[Made]:
        return [Made({"optimizer.lr": lr}, "chance", stop_reason="scheduler", epochs=stopped_at)
                if i < 6 else Made({"optimizer.lr": lr}, score=0.9 - 0.02 * abs(i - 9),
                                   speed=0.1) for i, lr in enumerate(lrs)]
    space = {"optimizer.lr": {"loguniform": [1e-5, 0.1]}}
    assert "dead" not in rules(key_of(found(made(2), space), "optimizer.lr"))
    assert "dead" in rules(key_of(found(made(EPOCHS), space), "optimizer.lr"))


def test_pbt_and_nothing_searched_make_no_claim():
    made = [Made({"optimizer.lr": lr}) for lr in log_spaced(1e-4, 0.1, 10)]
    assert found(made, LR, scheduler={"name": "pbt"}).note.startswith("PBT changes each")
    assert found(made, {}).note == "nothing is searched"


def test_errored_trials_are_no_evidence():
    made = [Made({"optimizer.lr": lr}, stop_reason="error") for lr in log_spaced(1e-4, 0.1, 12)]
    ev = found(made, LR)
    assert ev.judged == 0 and ev.total == 12 and ev.keys == ()


# -- the chances, against brute force --------------------------------------------------

@pytest.mark.parametrize("n,k", [(6, 2), (8, 3), (9, 4), (10, 5)])
def test_span_chance_counts_every_draw(n, k):
    draws = list(itertools.combinations(range(n), k))
    for w in range(k, n + 1):
        exact = sum(max(d) - min(d) + 1 <= w for d in draws) / len(draws)
        assert span_chance(n, k, w) == pytest.approx(exact)


def test_tail_and_all_chances_count_every_draw():
    n, m, k = 10, 4, 3
    draws = list(itertools.combinations(range(n), k))
    for g in range(k + 1):
        exact = sum(sum(i < m for i in d) >= g for d in draws) / len(draws)
        assert tail_chance(n, m, k, g) == pytest.approx(exact)
    assert all_chance(10, 7, 3) == pytest.approx(comb(7, 3) / comb(10, 3))
    assert all_chance(10, 2, 3) == 0.0
    rng = random.Random(0)
    failed = set(rng.sample(range(10), 7))
    hits = sum(set(rng.sample(range(10), 3)) <= failed for _ in range(20000)) / 20000
    assert hits == pytest.approx(comb(7, 3) / comb(10, 3), abs=0.02)


# -- shown by `sweep report` -------------------------------------------------------------

def test_report_shows_what_to_try_next_in_the_terminal_and_the_page(tmp_path):
    from tests.built_sweeps import write_sweep
    from tests.helpers import invoke

    lrs = log_spaced(1e-5, 0.1, 14)
    made = [Made({"optimizer.lr": lr}, "chance" if i < 6 else "good",
                 score=0.9 - 0.03 * abs(i - 10)) for i, lr in enumerate(lrs)]
    folder = write_sweep(tmp_path / "sweeps", spec(
        {"optimizer.lr": {"loguniform": [1e-5, 0.1]}}, num_samples=14), made)
    result = invoke("report", str(folder), "--out", str(tmp_path / "report"))
    assert result.exit_code == 0, result.stderr
    edge = f"{lrs[5]:.3g}"
    sentence = (f"6 of 6 trials with optimizer.lr <= {edge} never beat chance: cut "
                f"optimizer.lr up to {edge}")
    out = " ".join(result.stdout.split())  # the table wraps its cells
    assert "what to try next (from 14 trials that ended)" in out
    assert f"advice: {sentence}" in out
    assert "`sweep refine made` writes these changes into the next spec" in out
    page = (tmp_path / "report" / "report.html").read_text()
    assert '<h2 id="next">What to try next</h2>' in page
    (row,) = [r for r in page.split("<tr>") if r.startswith("<td>optimizer.lr</td>")]
    assert "<td>loguniform [1.0e-05, 0.1]</td>" in row and html.escape(sentence) in row


def test_a_metric_to_minimise_reads_the_lowest_as_best():
    lrs = log_spaced(1e-4, 0.1, 12)
    made = [Made({"optimizer.lr": lr}, extra={"best_val_loss": 1.0 - 0.05 * i})
            for i, lr in enumerate(lrs)]
    trials, history = tables(made)
    ev = evidence(trials, spec(LR, metric="val_loss", mode="min"), history)
    lr = key_of(ev, "optimizer.lr")
    assert ("the best trial (val_loss 0.45) and 2 of the best 3 have optimizer.lr in the top "
            "tenth of its range [0.0001, 0.1] (log axis): widen it upward") in \
        [c.sentence for c in lr.claims]
