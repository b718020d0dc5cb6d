"""The rules, in order: the first that fits a trial's curves names its label."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from statistics import median

from .curves import Curves, back_and_forth, noise_scale, read_curves, running_median
from .reasons import Diagnosis, num, pct, ratio
from .signal_rules import exploding, small_steps, steps_not_too_small, vanishing
from .thresholds import (
    ABOVE_START,
    BARELY_MOVED,
    BIG_RISE,
    BLOWUP,
    BOUNCE,
    COLLAPSE,
    DECAYED,
    FAR_ABOVE,
    FAR_FROM_DONE,
    FAR_FROM_ZERO,
    FAR_TO_GAIN,
    FAR_TO_GO,
    FAST_MOVE,
    FAST_TRAIN_MOVE,
    FLAT,
    JUDGE_SHARE,
    MIN_JUDGE,
    NEAR_CHANCE,
    NOISE_K,
    OVERFIT_ACC_DROP,
    OVERFIT_LOSS_FLOOR,
    OVERFIT_LOSS_RISE,
    PERSIST,
    RATE_BOUND,
    RATE_CUT,
    RISE_OF_FALL,
    SLOW_STEPS,
    SMOOTH_RISE,
    STILL_FALLING,
    SWING_FLOOR,
    SWINGING_STEPS,
    UNDERFIT_GAP,
    UNSTABLE,
    UPDATE_YARDSTICK,
    WANDER,
    WELL_BELOW,
)


def _not_finite(c: Curves) -> Diagnosis | None:
    """A loss not finite to the end (one that was finite again later was read as missing
    by `read_curves`): the run diverged, or ended on it."""
    for name, values in (("train loss", c.train), ("val loss", c.val)):
        for i, value in enumerate(values):
            if not math.isfinite(value):
                stayed = f" and stayed so to epoch {c.epochs[-1]}" if i < c.n - 1 else ""
                return Diagnosis("diverged", f"{name} is {value} at epoch {c.epochs[i]}"
                                             f"{stayed} ({c.lr_text(i, i)})")
    return None


def _thrown(c: Curves, i: int, what: str, stayed: Sequence[float] | None = None,
            above: float = 0.0) -> Diagnosis:
    """Thrown above where it started at epoch i: diverged for a model that never beat
    chance, unless the curve that was thrown (`stayed`, from epoch i on) then sat below
    `above` for most of the run: a one-epoch spike out of a loss bouncing around a lower
    level is a rate too large to learn, not a divergence."""
    what += f" at {c.lr_text(i, i)}"
    if c.learned() is False:
        if stayed is not None and median(stayed[i:]) < above:
            return Diagnosis("lr_too_high", (
                f"{what}, but mostly back below it (median {num(median(stayed[i:]))} from "
                f"then on); {c.never_beat_chance_text()}: steps too large to learn"))
        return Diagnosis("diverged", f"{what}; {c.never_beat_chance_text()}")
    best = min(c.val)
    return Diagnosis("lr_too_high", f"{what}; it recovered to a val loss of {num(best)}")


def _blown_up(c: Curves) -> Diagnosis | None:
    """The first epoch's train loss far above the untrained model's loss, and the model
    at the end of that epoch not recovered: no better than untrained, or its validation
    loss thrown as far above the untrained model's too."""
    if not c.train[0] > BLOWUP * c.start:
        return None
    recovered = c.val[0] < WELL_BELOW * min(c.start, c.chance_loss) or \
        (c.beat_chance_at(0) and c.val[0] <= BLOWUP * c.start)
    if recovered:
        return None  # a spike in the first steps, recovered within the epoch
    return _thrown(c, 0, f"train loss {num(c.train[0])} in epoch {c.epochs[0]}, "
                         f"{c.train[0] / c.start:.3g}x the untrained model's {num(c.start)}")


def _thrown_above_start(c: Curves) -> Diagnosis | None:
    """The steps threw the model above where it started: a train loss above its own
    start, or (for a model that never beat chance) a validation loss above the untrained
    model's, while the rate was not rising, and a train loss that jumps (not a smooth
    descent)."""
    if not any(b > a * (1 + SMOOTH_RISE) for a, b in zip(c.train, c.train[1:])):
        return None
    for i in range(c.n):
        if c.lr_rose(0, i):
            return None
        # a model that learned also lifts its validation loss above the start when it
        # overfits (or, in its first epoch, when batch-norm statistics lag): then only its
        # train loss tells; so does one that never beat chance on validation but had
        # fitted its training set below the chance loss by then (it overfits from the start)
        if c.val[i] > ABOVE_START * c.start and c.learned() is False and not c.fit_train(i):
            return _thrown(c, i, f"val loss {num(c.val[i])} at epoch {c.epochs[i]}, above "
                                 f"the untrained model's {num(c.start)}", c.val, c.start)
        if i and c.train[i] > ABOVE_START * c.train_start:
            return _thrown(c, i, f"train loss {num(c.train[i])} at epoch {c.epochs[i]}, "
                                 f"above its start {num(c.train_start)}", c.train, c.train_start)
    return None


def _blown_up_at_a_peak(c: Curves) -> Diagnosis | None:
    """While the schedule raised the rate (warmup, a one-cycle peak, a warm restart), the
    train loss thrown BLOWUP times above where the run started: a rising rate excuses a
    rise, not a blow-up; the peak is too high, whatever the run recovered to afterwards.
    The train loss, not the validation loss: batch-norm statistics that lag behind a
    rising rate lift a validation loss 3x for an epoch while the train loss falls."""
    for i in range(1, c.n):
        if c.lr_rose(i - 1, i) and c.train[i] > BLOWUP * c.train_start:
            return _thrown(c, i, f"train loss {num(c.train[i])} at epoch {c.epochs[i]} as the "
                                 f"rate rose, {c.train[i] / c.train_start:.3g}x its start "
                                 f"{num(c.train_start)}")
    return None


def _thrown_for_good(c: Curves) -> Diagnosis | None:
    """A model that never beat chance whose validation loss sat BLOWUP times above the
    untrained model's for its last PERSIST epochs: the steps threw the weights, whatever
    the train loss (a mean over moving weights) and the rate did. Batch-norm statistics
    lagging behind a rising rate lift a validation loss for an epoch, not to the end."""
    if c.learned() is not False or c.n < PERSIST:
        return None
    top = BLOWUP * max(c.start, c.chance_loss)
    if not all(v > top for v in c.val[-PERSIST:]):
        return None
    i = c.n - PERSIST
    return _thrown(c, i, (
        f"val loss {num(c.val[i])} at epoch {c.epochs[i]} and {num(c.val[-1])} at the end, "
        f"{c.val[-1] / c.start:.3g}x the untrained model's {num(c.start)}"))


def _lost_what_it_learned(c: Curves) -> Diagnosis | None:
    """It learned (beat chance), then lost at least COLLAPSE of it on validation, its
    score's gain over chance and its loss's fall below the chance loss alike, for
    PERSIST epochs running: the steps threw away what it had learned, whatever the
    schedule did then (a one-cycle peak, a warm restart). Back at chance, whatever
    follows (a flat loss at chance after it is no capacity limit); short of chance,
    only when it lasted to the end (a dip that the run won back is its schedule's)."""
    first = next((i for i in range(c.n) if c.beat_chance_at(i)), None)
    if first is None:
        return None
    score = c.r2 if c.regression else c.acc
    chance = 0.0 if c.regression else c.chance_acc
    best_i = first

    def lost(j: int) -> bool:
        """Epoch j gave back COLLAPSE of the best score's gain over chance (a weak model
        that hovers around the line between "beats chance" and not loses a few points,
        not half) and of the validation loss's best fall below the chance loss."""
        best_val = min(c.val[:j])
        return math.isfinite(score[j]) and \
            score[j] - chance <= (1 - COLLAPSE) * (score[best_i] - chance) and \
            c.val[j] - best_val >= COLLAPSE * (c.chance_loss - best_val)

    for i in range(first + 1, c.n):
        run = 0
        while i + run < c.n and lost(i + run):
            run += 1
        collapsed = all(c.at_chance_at(k) for k in range(i, i + run))
        if run >= PERSIST and (collapsed or i + run == c.n):
            j = i + run - 1
            what = "collapsed to chance" if collapsed else "lost at least half of it"
            return Diagnosis("lr_too_high", (
                f"learned to {c.score_text(best_i)} (epoch {c.epochs[best_i]}, val loss "
                f"{num(min(c.val[:i]))}), then {what} at epoch "
                f"{c.epochs[i]}: {c.score_text(i)}, val loss {num(c.val[i])} (chance loss "
                f"{num(c.chance_loss)}; {c.chance_text()}), still so at epoch {c.epochs[j]}, "
                f"at {c.lr_text(i, i)}"))
        if math.isfinite(score[i]) and score[i] > score[best_i]:
            best_i = i
    return None


def _lasting_rise(c: Curves) -> Diagnosis | None:
    """A fall, then a rise of the train loss beyond its noise that lasts to the end,
    while the rate did not rise."""
    # the last epochs above (best so far + tolerance), counted back from the end
    noise = noise_scale(c.train)
    top_start = c.train_start
    run, top = 0, 0.0
    for i in range(c.n - 1, -1, -1):
        before = min(c.train[:i]) if i else c.train[0]
        tolerance = max(NOISE_K * noise, RISE_OF_FALL * (top_start - before))
        if i == 0 or c.train[i] <= before + tolerance:
            break
        run, top = run + 1, max(top, c.train[i])
    if not run:
        return None
    first = c.n - run
    best_i = min(range(first), key=c.train.__getitem__)
    best = c.train[best_i]
    if best > (1 - BARELY_MOVED) * top_start:
        return None  # no fall to undo
    undone = (top - best) / max(top_start - best, 1e-12)
    if (run < PERSIST and undone < BIG_RISE) or c.lr_rose(best_i, c.n - 1):
        return None
    return Diagnosis("lr_too_high", (
        f"train loss rose from {num(best)} (epoch {c.epochs[best_i]}) to {num(top)} and stayed "
        f"up to the end (epochs {c.epochs[first]}-{c.epochs[-1]}), undoing {pct(undone)} of "
        f"its fall, at {c.lr_text(best_i, c.n - 1)}"))


def _unstable(c: Curves) -> Diagnosis | None:
    """The validation loss swings from epoch to epoch over the last third of the run
    while the rate is not rising, by SWING_FLOOR of the unsure loss at least (large for
    the task, not only for a loss near zero): steps too large to settle. Where the
    training's own signals were measured, the steps' size decides what the curves can
    only infer: steps at or below the healthy yardstick (UPDATE_YARDSTICK) throw nothing,
    so the swings are noise; steps an order above it (LARGE_STEPS) are what throws the
    weights, even under a train loss that falls smoothly."""
    window = c.val[-c.late - 1:]  # three changes at least
    if c.n < MIN_JUDGE or c.lr_rose(c.n - len(window), c.n - 1) or min(window) <= 0:
        return None
    swing = back_and_forth(window)
    if swing <= UNSTABLE:
        return None
    # the training's own signal, where measured: the size of the steps over these epochs
    update = c.signal(c.update_ratio, c.n - len(window))
    if update is not None and update <= UPDATE_YARDSTICK:
        return None  # steps of a healthy size or less do not throw the weights: noise
    train_swing = back_and_forth(c.train[-len(window):])
    changes = [b - a for a, b in zip(window, window[1:])]
    bounce = (sum(map(abs, changes)) - abs(sum(changes))) / len(changes) / c.chance_loss
    large = update is not None and update >= SWINGING_STEPS
    if train_swing <= UNSTABLE and bounce <= BOUNCE and not large:
        return None  # the train loss falls smoothly and the bounce is small for the task
    # in units of the loss's own scale, not `in_unsure`'s squared one for an l1 loss: a
    # swing around a level, not a level
    swing_unsure = bounce * c.chance_loss / c.unsure_loss()
    if swing_unsure < SWING_FLOOR:
        return None  # large for the loss's level, small for the task: a few examples
    if c.val[-1] <= min(c.val[:-1]) and c.level(c.val, -1) <= min(c.val[:-c.late]):
        return None  # still finding new ground through its swings: descending, not thrown
    return Diagnosis("lr_too_high", (
        f"val loss goes back and forth between {num(min(window))} and {num(max(window))} over "
        f"the last {len(window) - 1} epochs ({pct(math.exp(swing) - 1)} per epoch "
        f"beyond its trend, {ratio(bounce)} of the chance loss {num(c.chance_loss)}"
        f"{f', {ratio(swing_unsure)} of ln 2' if c.unsure_text() == 'ln 2' else ''}; the "
        f"train loss {pct(math.exp(train_swing) - 1)}"
        f"{f'; {c.steps_text(update)}' if update is not None else ''}) at "
        f"{c.lr_text(c.n - len(window), c.n - 1)}"))


def _worse_for_good(c: Curves, values: Sequence[float], use_score: bool, name: str
                    ) -> Diagnosis | None:
    """One curve worse than its best beyond its noise over the last PERSIST+1 epochs,
    while the train loss kept falling and the rate did not rise."""
    badness = [-v for v in values] if use_score else list(values)
    smooth = running_median(badness)  # a one-epoch lucky dip is not the best
    best_i = min(range(c.n), key=smooth.__getitem__)
    tail = PERSIST + 1
    if c.n - 1 - best_i < tail:
        return None
    best = smooth[best_i]
    if use_score:
        floor = OVERFIT_ACC_DROP
    elif values is c.val:
        floor = OVERFIT_LOSS_FLOOR * c.unsure_loss()
    else:  # a validation error with no chance level recorded (val_mae)
        floor = OVERFIT_LOSS_RISE * abs(best)
    if not all(b - best > floor for b in badness[-tail:]):
        return None
    # the mean of the tail against the noise of one epoch, shrunk by averaging
    worse = sum(badness[-tail:]) / tail - best
    if worse <= NOISE_K * noise_scale(values) / math.sqrt(tail):
        return None
    if not min(c.train[-tail:]) < c.train[best_i] or c.lr_rose(best_i, c.n - 1):
        return None
    size = (f"{num(worse)} below" if use_score else f"{pct(worse / max(abs(best), 1e-12))} above")
    where = f"epoch {c.epochs[best_i]}"
    if values is c.val:
        where += f"; the rise {pct(worse / c.unsure_loss())} of {c.unsure_text()}"
    return Diagnosis("overfitting", (
        f"{name} {size} its best {num(abs(best))} ({where}) over the last "
        f"{tail} epochs, {num(values[-1])} at the end, while train loss fell from "
        f"{num(c.train[best_i])} to {num(c.train[-1])}"))


def _overfitting(c: Curves) -> Diagnosis | None:
    if c.n < MIN_JUDGE or (c.learned() is False and not c.fit_train()):
        return None  # a model that learnt nothing, not even its training set, cannot overfit
    use_score, values, name = c.objective()
    candidates = [(use_score, values, name)]
    if name != "val loss":
        candidates.append((False, c.val, "val loss"))
    for use_score, values, name in candidates:
        if all(math.isfinite(v) for v in values):
            found = _worse_for_good(c, values, use_score, name)
            if found:
                return found
    return None


def _levelled_at_small_steps(c: Curves) -> Diagnosis | None:
    """The training's own signal against a capacity limit the curves alone would claim:
    a run that levelled off far above what the data allows (the evidence `_underfitting`
    needs) while its update ratio over the last epochs, at full rate, was below
    SLOW_STEPS (half an order below the yardstick). Curves level as the steps shrink
    with the gradient, whatever the capacity: steps that small say the rate held the
    net back, not its size (1024 units at SGD 1e-3 level at 51% of the chance loss,
    steps 2-4e-4; at 1e-2 they step 1e-3 and reach 35%)."""
    update = c.signal(c.update_ratio, -c.late, None, full_rate=True)
    if update is None or update >= SLOW_STEPS or _underfitting(c) is None:
        return None
    return Diagnosis("lr_too_low", (
        f"levelled off at {num(c.train[-1])} (val loss {num(c.val[-1])}, "
        f"{pct(c.level(c.val, -1) / c.chance_loss)} of the chance loss) with steps too "
        f"small to claim a capacity limit: {c.steps_text(update)} over its last epochs, "
        f"below it by half an order or more, at {c.lr_text(0, c.n - 1)}"))


def _too_short(c: Curves) -> Diagnosis | None:
    if c.stop_reason in ("completed", "early_stopping", "diverged"):
        return None
    enough = max(MIN_JUDGE, JUDGE_SHARE * c.planned if c.planned else MIN_JUDGE)
    if c.n >= enough:
        return None
    by = {"scheduler": "stopped by the scheduler", "budget": "stopped by the time budget",
          "error": "ended by an error"}.get(c.stop_reason or "", "not finished")
    of = f" of {c.planned}" if c.planned else ""
    return Diagnosis("too_short", (
        f"{by} after {c.n}{of} epochs, too few to judge (val loss {num(c.start)} -> "
        f"{num(c.val[-1])}, {c.score_text()})"))


def _levelled(c: Curves) -> bool:
    fall = c.fall()
    return c.n >= MIN_JUDGE and fall > 0 and c.late_fall(c.train) < STILL_FALLING * fall


def _decayed_stall(c: Curves) -> Diagnosis | None:
    """Levelled far above zero once the schedule had cut the rate DECAYED-fold, and only
    then: while the rate was near its peak the train loss was still falling. A run that
    had levelled off at its full rate has reached what that model and data allow; the
    decay that followed is not what stopped it (a plateau schedule cuts the rate *because*
    the loss levelled)."""
    if c.decay() < DECAYED:
        return None
    if not (_levelled(c) and c.share(c.train[-1]) > FAR_ABOVE):
        return None
    if c.share(c.level(c.val, -1)) < FAR_FROM_DONE:
        return None  # it learned most of what there is: the decay annealed it
    full = c.last_at_full_rate()
    if full is None or _levelled(c.upto(full)):
        return None
    held = _held_back(c, full)
    if held is None or held < RATE_BOUND:
        return None  # it slowed more than the rate did: its own floor, not the schedule
    return Diagnosis("lr_too_low", (
        f"train loss stalled at {num(c.train[-1])} (val loss {pct(c.val[-1] / c.chance_loss)} "
        f"of the chance loss) once the schedule had decayed the rate {c.decay():.2g}x, to "
        f"{c.lr_text(c.n - 1, c.n - 1)}, still falling at epoch {c.epochs[full]}, when the "
        f"rate was within {RATE_CUT:g}x of its peak, and after it as fast as the smaller "
        f"rate allowed ({pct(held)} of the fall the pace at the peak rate, scaled by the "
        f"rates that followed, would bring)"))


def _held_back(c: Curves, full: int) -> float | None:
    """How much of the fall the rate allowed a run made after its schedule cut the rate:
    the train loss's fall per unit of rate over the (up to) two epochs up to `full`, the
    last at full rate, times the rates of the epochs after it, against the fall it made
    after `full`. A run held back by its rate falls in step with the rate (about 1); one
    that had reached what the model and data allow falls far less than its rate would
    have taken it. None when the run was not falling at its full rate."""
    a = max(full - 2, 0)
    before = c.train_start if full == 0 else c.train[a]
    rates = c.lr[0:1] if full == 0 else c.lr[a + 1:full + 1]
    spent = sum(v for v in rates if math.isfinite(v))
    after = sum(v for v in c.lr[full + 1:] if math.isfinite(v))
    if spent <= 0 or after <= 0 or before <= c.train[full]:
        return None
    expected = (before - c.train[full]) / spent * after
    if not math.isfinite(expected) or expected <= 0:
        return None  # rates so small the product underflows: no pace to compare with
    return (c.train[full] - c.train[-1]) / expected


def _not_learning(c: Curves) -> Diagnosis | None:
    """Never beat chance, the validation loss never well below the chance loss: the rate
    is the suspect, unless the train loss descended smoothly to the chance band and
    stopped there (`_stopped_at_chance`: the capacity). Which way: a rate too small moves
    the losses smoothly and slowly (the train loss downhill, one way, whatever the
    validation loss does); one too large moves them fast or makes them jump."""
    if c.n < 2 or c.learned() or min(c.val) < (1 - NEAR_CHANCE) * c.chance_loss:
        return None
    if c.learned() is None and min(c.val) < (1 - BARELY_MOVED) * c.start:
        return None  # no score to judge by and the loss moved: leave it to the others
    level = f"val loss {num(c.val[-1])}, {ratio(c.val[-1] / c.chance_loss)} of the chance loss"
    score = c.never_beat_chance_text() if c.learned() is False else "no score to judge by"
    moves = [abs(math.log(b / a)) for a, b in zip([c.start, *c.val], c.val) if a > 0 and b > 0]
    fast = max(moves, default=0.0)
    at_chance = abs(c.level(c.val, -1) / c.chance_loss - 1) <= NEAR_CHANCE
    if at_chance and fast >= -math.log(1 - FAST_MOVE):
        return Diagnosis("lr_too_high", (
            f"not learning: {level}, {score}; yet one epoch moved the val loss "
            f"{pct(1 - math.exp(-fast))} at {c.lr_text(0, c.n - 1)}: steps too large to "
            f"learn, not too small"))
    # a fall from the untrained model's loss down to the chance loss is an output bias
    # learning the class frequencies, fast at any rate (0.605 -> 0.47 in one epoch at
    # Adam 1e-3 on an 89/11 table, chance 0.353): no evidence of steps too large
    train_moves = [0.0 if a <= 0 or b <= 0 or c.chance_loss <= b < a <= c.start
                   else abs(math.log(b / a)) for a, b in zip(c.train, c.train[1:])]
    i = max(range(len(train_moves)), key=train_moves.__getitem__, default=None)
    if at_chance and i is not None and train_moves[i] >= -math.log(1 - FAST_TRAIN_MOVE):
        return Diagnosis("lr_too_high", (
            f"not learning: {level}, {score}; yet the train loss moved "
            f"{num(c.train[i])} -> {num(c.train[i + 1])} in one epoch (epoch {c.epochs[i + 1]}) "
            f"at {c.lr_text(0, c.n - 1)}: steps too large to learn, not too small"))
    if _stopped_at_chance(c):
        return None  # a smooth descent that stopped: the model, not the rate (underfitting)
    # a rate too small moves the validation loss one way, downhill, however slowly; one
    # that goes back and forth more than it goes anywhere was moved by steps too large ...
    wander = back_and_forth(c.val)
    progress = abs(math.log(c.val[-1] / c.val[0])) / (c.n - 1) if min(c.val) > 0 else 0.0
    # ... unless the train loss descends, one way, faster than the validation loss goes
    # back and forth: the weights move steadily downhill, and what lifts the validation
    # loss about is not the steps (batch-norm statistics, a small split)
    descent = _descent(c.train)
    if wander > max(progress, WANDER) and descent > wander:
        return Diagnosis("lr_too_low", (
            f"not learning: {level}, {score}; the val loss goes back and forth "
            f"({100 * wander:.2g}% per epoch beyond its trend), but the train loss descends "
            f"one way faster, {num(c.train[1])} -> {num(c.train[-1])} ({100 * descent:.2g}% "
            f"per epoch): a rate too small, at {c.lr_text(0, c.n - 1)}"))
    if wander > max(progress, WANDER):
        return Diagnosis("lr_too_high", (
            f"not learning: {level}, {score}; the val loss goes back and forth between "
            f"{num(min(c.val))} and {num(max(c.val))} ({100 * wander:.2g}% per epoch beyond its "
            f"trend) more than it moves ({100 * progress:.2g}% per epoch net) at "
            f"{c.lr_text(0, c.n - 1)}: steps too large to learn"))
    return Diagnosis("lr_too_low", (
        f"not learning: {level}, {score}; a smooth, slow curve (train loss "
        f"{num(c.train[0])} -> {num(c.train[-1])}) at {c.lr_text(0, c.n - 1)}"))


def _descent(train: Sequence[float]) -> float:
    """How fast a train loss descends one way from its second epoch on (per epoch, in
    log terms): its net fall, when that exceeds its own back-and-forth; else 0. The first
    epoch's mean is over the weights' first steps (the output bias finding the class
    frequencies, a spike), not the rate's steady work."""
    train = train[1:]
    if len(train) < 3 or min(train) <= 0:
        return 0.0
    net = math.log(train[0] / train[-1]) / (len(train) - 1)
    return net if net > back_and_forth(train) else 0.0


def _stopped_at_chance(c: Curves) -> bool:
    """A model whose validation loss never left the chance band, whose train loss
    descended to the chance loss (from an untrained model's loss above it by more than
    FLAT, within the chance band) or below it (by more than BARELY_MOVED of it) and
    stopped there: its last `late` epochs barely moved it, by less than BARELY_MOVED of
    its fall from its start (here 0-3%). A rate that moved the weights that far is not
    too small to move them further (a rate too small still creeps down at its end: 15-25%
    of such a fall here, more than STILL_FALLING's levelled, so stricter than it),
    and steps too large to learn were caught before (a fast move of either loss); what
    stops a descent at the class frequencies, or just below them, is the model: too
    little capacity to learn more (here 1-4 units in a 4-deep net at Adam 3e-3, the train
    loss 2.41 -> 2.302 against a chance loss of 2.309, flat for 20 epochs; a 1-unit table
    net levelled 7% below the chance loss). An untrained loss far above the chance band
    (unscaled targets) plunges to it in a few steps at any rate: a creep after that
    plunge looks flat beside it, and is no evidence."""
    if c.n < MIN_JUDGE or c.learned() or min(c.val) < WELL_BELOW * c.chance_loss:
        return False
    end = c.level(c.train, -1)
    fall = c.train_start - end
    if fall <= 0 or c.late_fall(c.train) >= BARELY_MOVED * fall:
        return False
    return end < (1 - BARELY_MOVED) * c.chance_loss or \
        (end <= c.chance_loss and (1 + FLAT) < c.start / c.chance_loss <= 1 + NEAR_CHANCE)


def _underfitting(c: Curves) -> Diagnosis | None:
    """Evidence of a capacity limit: the model learned (validation well below chance),
    then train and validation levelled off together far above zero, at a rate that
    still moves weights: the whole levelled stretch at the end within RATE_CUT of the
    peak rate. A run whose schedule then cut the rate shows no such stretch: a decay
    flattens any curve, and one that had levelled before it was settled by its schedule,
    not shown to lack capacity (a stall that came with the cut was caught before)."""
    stopped = _stopped_at_chance(c)
    if not (_levelled(c) or stopped) or c.share(c.level(c.train, -1)) <= FAR_ABOVE:
        return None
    full = c.last_at_full_rate()
    if full is not None and full < c.n - 1:
        return None
    val_end, train_end = c.level(c.val, -1), c.level(c.train, -1)
    if not (val_end <= WELL_BELOW * c.chance_loss or stopped) or not c.val_tracks():
        return None
    if c.share(val_end) <= FAR_ABOVE:
        return None  # the model itself (eval mode) is near what the data allows: no limit
    if val_end - train_end > UNDERFIT_GAP * c.chance_loss:
        return None  # it fits its training set better than it generalises: not capacity
    if stopped and val_end > WELL_BELOW * c.chance_loss:
        fall = c.train_start - train_end
        return Diagnosis("underfitting", (
            f"the val loss never left the chance band ({num(c.val[-1])}, "
            f"{pct(val_end / c.chance_loss)} of the chance loss), but the train loss fell "
            f"smoothly from {num(c.train_start)} to {num(c.train[-1])} "
            f"({pct(train_end / c.chance_loss)} of the chance loss) and stopped there: the "
            f"last {c.late} epochs brought {pct(c.late_fall(c.train) / fall)} of its fall, at "
            f"{c.lr_text(c.n - 1, c.n - 1)}: a rate that moved the weights that far, and no "
            f"further, is neither too small nor too large: too little capacity for this data"))
    return Diagnosis("underfitting", (
        f"train loss fell from {num(c.train_start)} and levelled off at {num(c.train[-1])} "
        f"({pct(c.train[-1] / c.chance_loss)} of the chance loss; the last {c.late} epochs "
        f"brought {pct(c.late_fall(c.train) / c.fall())} of {c.fall_text()}), val loss with "
        f"it at {num(c.val[-1])} ({pct(val_end / c.chance_loss)} of chance), at "
        f"{c.lr_text(c.n - 1, c.n - 1)}: too little capacity for this data"))


def _lr_too_low(c: Curves) -> Diagnosis | None:
    """Barely moved; or a run that ran its course (completed, or ended by early stopping:
    a stopper fooled by a noisy objective while both losses still fall, as in a deep tanh
    net whose train loss fell 2.21 -> 2.03 in its last 5 epochs, ended a run that had far
    to go; a scheduler's cut is too_short's to judge) still improving at its end, unless
    that is the annealing of a decayed schedule."""
    fall = c.train_start - min(c.train)
    if fall < BARELY_MOVED * c.train_start and c.start - min(c.val) < BARELY_MOVED * c.start \
            and c.n >= 2:
        return Diagnosis("lr_too_low", (
            f"train loss barely left its start {num(c.train_start)}: best {num(min(c.train))} "
            f"({pct(fall / c.train_start)} lower; val loss {num(c.start)} -> "
            f"{num(min(c.val))}) in {c.n} epochs at {c.lr_text(0, c.n - 1)}"))
    if c.stop_reason not in ("completed", "early_stopping") or _annealed(c):
        return None
    if steps_not_too_small(c):
        return None
    if c.n < MIN_JUDGE:
        return _short_still_improving(c)
    if c.share(c.train[-1]) <= FAR_FROM_ZERO:
        return None
    total = c.fall()
    generalised = min(c.val) < WELL_BELOW * c.chance_loss
    ahead = c.gain_ahead(c.train, c.pace(c.train))
    if total > 0 and c.new_ground(c.train) >= STILL_FALLING * total and \
            (c.val_tracks() or not generalised) and ahead >= FAR_TO_GAIN:
        return Diagnosis("lr_too_low", (
            f"train loss still falling steadily at the end: the last {c.late} epochs brought "
            f"{pct(c.new_ground(c.train) / total)} of {c.fall_text()}, to {num(c.train[-1])} "
            f"({pct(c.train[-1] / c.chance_loss)} of the chance loss; as many epochs again "
            f"at that pace: {num(ahead)} of {c.unsure_text()} more), val loss with it "
            f"{num(c.level(c.val, -c.late - 1))} -> {num(c.val[-1])}, at "
            f"{c.lr_text(c.n - 1, c.n - 1)}"))
    return _objective_still_improving(c)


def _annealed(c: Curves) -> bool:
    """A run whose schedule had cut the rate DECAYED-fold by its end, its validation loss
    within FAR_ABOVE of zero: a gain in its last epochs is the annealing (smaller steps
    settle into the minimum they found), not a rate too small to get there."""
    return c.decay() >= DECAYED and c.share(c.level(c.val, -1)) <= FAR_ABOVE


def _short_still_improving(c: Curves) -> Diagnosis | None:
    """A run planned for fewer than MIN_JUDGE epochs whose last epoch still
    brought a good share of the validation loss's fall, at a pace that would gain
    FAR_TO_GAIN more in as many epochs again: it stopped mid-descent."""
    if c.n < 2:
        return None
    val_fall = c.start - c.val[-1]
    last = c.val[-2] - c.val[-1]
    if val_fall <= 0 or last < STILL_FALLING * val_fall or c.train[-1] >= c.train[-2]:
        return None
    if c.val[-1] <= 0 or c.gain_ahead(c.val, math.log(c.val[-2] / c.val[-1])) < FAR_TO_GAIN:
        return None  # near done: its last epoch's pace would gain little more
    return Diagnosis("lr_too_low", (
        f"still improving fast when its {c.n} planned epochs ran out: the last epoch "
        f"brought {pct(last / val_fall)} of the val loss's fall ({num(c.val[-2])} -> "
        f"{num(c.val[-1])}, {c.score_text(-2)} -> {num((c.r2 if c.regression else c.acc)[-1])}), "
        f"at {c.lr_text(c.n - 1, c.n - 1)}"))


def _objective_still_improving(c: Curves) -> Diagnosis | None:
    """The objective's best is its last epoch (or the one before) and the last third of
    the run improved it beyond what counts as overfitting the other way: beyond the best
    it had reached before (winning back a dip, as after a warm restart, is no progress);
    and the run had far to go: the validation loss's pace at the end, kept up for as many
    epochs again, would take FAR_TO_GO off it (a curve levelling off gains a little every
    epoch too; weak evidence reads healthy), and FAR_TO_GAIN of the unsure loss (a loss
    near zero falls by a large share of itself for little gain)."""
    use_score, values, name = c.objective()
    goodness = list(values) if use_score else [-v for v in values]
    if not all(math.isfinite(v) for v in goodness):
        return None
    best_i = max(range(c.n), key=goodness.__getitem__)
    before = max(goodness[:-c.third])
    gain = goodness[best_i] - before
    needed = OVERFIT_ACC_DROP if use_score else OVERFIT_LOSS_RISE * abs(before)
    if best_i < c.n - 2 or gain <= max(needed, NOISE_K * noise_scale(values)):
        return None
    ahead = c.pace(c.val) * c.n
    if ahead < FAR_TO_GO:
        return None  # levelling: as many epochs again at its final pace would gain little
    gain = c.gain_ahead(c.val, c.pace(c.val))
    if gain < FAR_TO_GAIN:
        return None  # near done: a large share of a small loss is a small gain
    return Diagnosis("lr_too_low", (
        f"{name} still improving at the end: {num(values[best_i])} at epoch "
        f"{c.epochs[best_i]}, beyond its best {num(before if use_score else -before)} "
        f"before the last {c.third} epochs, the val loss still falling "
        f"{pct(1 - math.exp(-c.pace(c.val)))} per epoch ({num(c.level(c.val, -c.late - 1))} -> "
        f"{num(c.level(c.val, -1))}; as many epochs again at that pace: "
        f"{pct(1 - math.exp(-ahead))} lower, {num(gain)} of {c.unsure_text()}), train loss "
        f"still {num(c.train[-1])}, at "
        f"{c.lr_text(c.n - 1, c.n - 1)}"))


def _healthy(c: Curves, mode: str) -> Diagnosis:
    values = {"val_acc": c.acc, "val_loss": c.val, "train_loss": c.train, "val_r2": c.r2,
              "val_mae": c.mae}[c.metric]
    best = max(values) if mode == "max" else min(values)
    return Diagnosis("healthy", (
        f"{c.metric} best {num(best)} at epoch {c.epochs[values.index(best)]}; train loss "
        f"{num(c.train_start)} -> {num(c.train[-1])}, val loss {num(c.start)} -> "
        f"{num(c.val[-1])}, levelled with no lasting rise"))


# The rules, in the order they are tried: the first that fits names the label.
RULES = (
    exploding,
    _not_finite,
    _blown_up,
    _thrown_above_start,
    _lost_what_it_learned,
    _thrown_for_good,
    _blown_up_at_a_peak,
    _lasting_rise,
    _unstable,
    _overfitting,
    vanishing,
    _too_short,
    small_steps,
    _decayed_stall,
    _not_learning,
    _levelled_at_small_steps,
    _underfitting,
    _lr_too_low,
)


def diagnose(history: Sequence[Mapping], trial: Mapping, metric: str = "val_acc",
             mode: str = "max") -> Diagnosis:
    """The label of one trial (see the package docstring) and the numbers that decided it.

    `history`: the trial's rows (`epoch`, `train_loss`, `val_loss`, `val_acc`, `lr`);
    `trial`: its row (`stop_reason`, the baselines, `config.epochs`); `metric`/`mode`:
    the sweep's objective."""
    if not history:
        return Diagnosis("too_short", "no epoch finished")
    c = read_curves(history, trial, metric)
    found = next(filter(None, (rule(c) for rule in RULES)), None) or _healthy(c, mode)
    if c.missing:  # the reason says which epochs it did not read, and why
        return Diagnosis(found.label, f"{found.reason}; {c.missing_text()}")
    return found
