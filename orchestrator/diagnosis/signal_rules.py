"""The rules that read the training's own signals (trainable/signals.py; ../shared/
TUNING.md, "Reading the training itself"): the gradient norm, the update against the
weights, the first weight layer's gradient against the last's. Each stands aside where
its signal was not measured (a sweep from before the signals, a loop without
`trial.watch`), and the rules on the curves decide as they did before them. `rules.py`
puts them in its order."""

from __future__ import annotations

import math

from orchestrator.states import Label

from .curves import Curves
from .reasons import ADVICE, Diagnosis, num, pct
from .thresholds import (
    BARELY_MOVED,
    EXPLODING,
    FAR_ABOVE,
    LARGE_STEPS,
    SMALL_STEPS,
    UPDATE_YARDSTICK,
    VANISHED,
    WELL_BELOW,
)


def exploding(c: Curves) -> Diagnosis | None:
    """The training's own signal: the global gradient norm at the last epoch it was
    measured EXPLODING times (two orders) or more above its lowest before, while the
    training went backwards: the loss overflowed, or the train loss rose above where it
    was when the growth began (by BARELY_MOVED of its start: a loss near zero bounces by
    a large share of itself while its tiny gradient grows), or, for a model that never
    beat chance, went nowhere. Exploding gradients, whether the loss overflowed or not.
    A gradient that overflows within the first epoch shows no growth across epochs: the
    curve shows a loss not finite from the start, `diverged`, and nothing more."""
    norms = [(i, v) for i, v in enumerate(c.grad_norm) if math.isfinite(v) and v > 0]
    if len(norms) < 2:
        return None
    j, top = norms[-1]
    i, low = min(norms[:-1], key=lambda n: n[1])
    if top < EXPLODING * low:
        return None
    overflowed = next((k for k in range(i, c.n)
                       if not (math.isfinite(c.train[k]) and math.isfinite(c.val[k]))), None)
    rose = math.isfinite(c.train[-1]) and \
        c.train[-1] - c.train[i] >= BARELY_MOVED * c.train_start
    nowhere = c.learned() is False and c.train[-1] >= c.train[i]
    if overflowed is None and not (rose or nowhere):
        return None  # the loss fell as the norm grew, or barely moved near zero
    where = (f"the loss not finite from epoch {c.epochs[overflowed]}" if overflowed is not None
             else f"the train loss {num(c.train[i])} -> {num(c.train[-1])}")
    return Diagnosis(Label.EXPLODING_GRADIENTS, (
        f"the gradient norm grew {top / low:.3g}x, from {num(low)} (epoch {c.epochs[i]}) to "
        f"{num(top)} (epoch {c.epochs[j]}), while the training went backwards ({where}) at "
        f"{c.lr_text(i, j)}: exploding gradients; {ADVICE[Label.EXPLODING_GRADIENTS]}"))


def vanishing(c: Curves) -> Diagnosis | None:
    """The training's own signal: the first weight layer's gradient VANISHED (two orders
    or more below the last's) from the first epoch on, in a net that did not learn
    (never beat chance; with no score to judge by, a validation loss that never left the
    band around its start) or sat at the chance level for at least half its epochs
    before it did: too much depth for the net as it is, whatever the rate. A ratio that
    collapsed only after the first epoch's large steps is the rate's (dead units): the
    rules on the curves read that."""
    first = next((v for v in c.grad_norm_ratio if math.isfinite(v) and v > 0), None)
    if first is None or first > VANISHED:
        return None
    learned = c.learned()
    if learned is None:
        learned = min(c.val) < WELL_BELOW * c.start
    stuck = next((i for i in range(c.n) if not c.at_chance_at(i)), c.n)
    if learned and stuck < max(c.n / 2, 1):
        return None
    ratio_there = c.signal(c.grad_norm_ratio, 0, None if not learned else stuck)
    if ratio_there is None or ratio_there > VANISHED:
        return None
    how = c.never_beat_chance_text() if not learned else (
        f"at the chance level for its first {stuck} of {c.n} epochs")
    return Diagnosis(Label.VANISHING_GRADIENTS, (
        f"the first layer's gradient {num(ratio_there)} of the last layer's (median; "
        f"{num(first)} in its first measured epoch), orders below 1, and {how} (val loss "
        f"{num(c.val[-1])}, chance {num(c.chance_loss)}) at {c.lr_text(0, c.n - 1)}: "
        f"vanishing gradients, the first layers barely learn; "
        f"{ADVICE[Label.VANISHING_GRADIENTS]}"))


def small_steps(c: Curves) -> Diagnosis | None:
    """The training's own signal: at its full rate (a decay shrinks any run's steps) the
    update ratio over the last epochs is SMALL_STEPS (an order below the yardstick) or
    less while the validation loss is still far above what the data allows: the rate
    holds the run back, whatever the curve's shape (a plateau at steps that small is no
    capacity limit)."""
    update = c.signal(c.update_ratio, -c.late, None, full_rate=True)
    if update is None or update > SMALL_STEPS:
        return None
    if c.share(c.level(c.val, -1)) <= FAR_ABOVE:
        return None  # near what the data allows: the steps had little left to do
    return Diagnosis(Label.LR_TOO_LOW, (
        f"steps too small: {c.steps_text(update)} over its last epochs at full rate, an "
        f"order or more below it, with the val loss still at "
        f"{pct(c.level(c.val, -1) / c.chance_loss)} of the chance loss ({c.score_text()}), "
        f"at {c.lr_text(0, c.n - 1)}"))


def steps_not_too_small(c: Curves) -> bool:
    """The training's own signal clears the rate of holding back a run still improving
    at its end: its update ratio over the last epochs LARGE_STEPS (an order above the
    yardstick) or more, or at the yardstick or more with the validation loss already
    within FAR_ABOVE of zero (most of what there is learned; what is left is epochs, at
    steps of a healthy size)."""
    update = c.signal(c.update_ratio, -c.late)
    if update is None:
        return False
    return update >= LARGE_STEPS or (update >= UPDATE_YARDSTICK and
                                     c.share(c.level(c.val, -1)) <= FAR_ABOVE)
