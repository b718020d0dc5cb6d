"""What went wrong in a trial, read from its own curves (docs/tuning.md, docs/diagnosis.md).

A pure function of the trial's history rows (per-epoch `train_loss`, `val_loss`,
`val_acc`, or a regression's `val_r2`/`val_mae`, `lr`) and its trial row (`stop_reason`,
the untrained model's `initial_val_loss`/`initial_val_acc`, the chance level
`chance_val_loss`/`chance_val_acc`, `config.epochs`): no torch, no Ray, so `sweep report`
diagnoses old sweeps again.

Like is compared with like: a validation loss with the untrained model's validation loss
or the chance loss (both measured on the validation split), a train loss with the train
loss of earlier epochs. A train loss is a mean over an epoch of moving weights, with
dropout and batch statistics on; it may sit well above the validation loss of the same
model, so it is never read against a validation baseline.

Where the trial measured the training's own signals (`grad_norm`, `grad_norm_max`,
`update_ratio`, `grad_norm_ratio`: the shared trainable always, a user's loop with
`trial.watch`), some rules read them too (marked [signals] below); without them those
rules stand aside and the curves decide alone, exactly as before the signals.

Labels, the first rule that fits wins:
  exploding_gradients  [signals] the gradient norm grew two orders or more from one
                epoch to the last measured while the training went backwards (the loss
                overflowed, or the train loss rose, or it never learned): clip the
                gradients and lower the rate
  diverged      a loss is not finite to the end (one finite again later is a missing
                value: those epochs are left out, and the reason says so); or the steps
                threw the loss above where the run started (the first epoch's train loss
                3x the untrained model's loss, the model at its end not recovered: its
                validation loss 3x too, or it learned nothing; or a validation loss
                above the untrained model's before the train loss had fallen below the
                chance loss, or a train loss above its own start, the curve staying up
                there) and validation never beat chance; or, for a model that never beat
                chance, a validation loss 3x the untrained model's over its last epochs
  lr_too_high   the same after some learning, or a spike above the start out of a loss
                that sits below it; or it learned, then lost at least half of it on
                validation (score and loss) for 2 epochs running, back at chance
                (whatever follows) or to the end (whatever the schedule did then); or
                a train loss blown up 3x its start while the rate rose (a peak too
                high); or a fall then a lasting rise of the train loss; or a validation
                loss that swings at the end, with the train loss swinging too or by a
                good share of the chance loss, while the rate was not rising
                [signals] also a validation loss that swings beyond a share of the
                unsure loss under a smooth train loss, at steps half an order above the
                1e-3 yardstick or more; steps at the yardstick or below throw nothing:
                the swings are noise
  overfitting   the objective or the validation loss worse than its best beyond its noise
                for good (the loss by a share of ln 2, what an example adds going from
                sure to unsure), while the train loss keeps falling (also for a model that
                never beat chance on validation but fitted its training set below the
                chance loss)
  vanishing_gradients  [signals] the first weight layer's gradient two orders or more
                below the last's from the first epoch on, in a net that did not learn
                (or sat at chance for half its epochs): too much depth for the net as it
                is; normalisation, residual connections, a shallower net or a better
                initialisation, no learning rate
  too_short     stopped by the scheduler or the budget before a curve can be judged
  lr_too_low    [signals] steps an order below the yardstick at full rate with the loss
                still far above what the data allows, whatever the curve's shape
  lr_too_low    it stalled once the schedule had cut the rate tenfold or more, and only
                then: it was still falling while the rate was within 2x of its peak
  lr_too_low /  never beat chance, the loss at the chance level or above: a curve that
  lr_too_high   goes one way, however slowly, is a rate too small to move the weights; a
                fast move of either loss, or a validation loss that goes back and forth
                more than it goes anywhere (unless the train loss descends one way
                faster: batch-norm noise under a tiny rate), a rate too large to learn
  lr_too_low    [signals] what reads `underfitting` below, at steps half an order
                below the yardstick or less: the rate held it back, not its size
  underfitting  the validation loss fell well below chance, then train and validation
                levelled off together (over 3 epochs at least), both far above zero, at
                the same level, at a rate that still moves weights: the levelled stretch
                within 2x of the peak rate, not settled by a decaying schedule (its fall
                counted from the chance loss: the way down to it is the class
                frequencies, learnt by an output bias at any rate); or, never beating
                chance, a train loss that descended smoothly to the chance loss (from an
                untrained loss within 2-10% above it) or 5% below it, and stopped there
  lr_too_low    the loss barely left its start; or a run that completed (or was early
                stopped) still improving at its end (train and validation still falling
                to new lows, or the objective beyond its best before at a pace that, kept
                up for as many epochs again, would take 39% off the validation loss; a
                validation loss still at the chance level need not fall along), unless
                its schedule had cut the rate tenfold and its loss is low: that last gain
                is the annealing; [signals] or its steps an order above the yardstick,
                or at it with the loss already low: not a rate too small
  healthy       none of the above

Every threshold is a named constant with the reason for its value. Train-loss rises are
compared with the *fall* the trial achieved (its start minus its best), not with their
own level: a converged tail at 0.01 that jitters to 0.015 has risen 50% but undone 0.2%
of the training, which is noise, not a rebound.
"""

from __future__ import annotations

from .curves import back_and_forth, noise_scale, running_median
from .reasons import LABELS, Diagnosis
from .rules import diagnose

__all__ = ["LABELS", "Diagnosis", "back_and_forth", "diagnose", "noise_scale",
           "running_median"]
