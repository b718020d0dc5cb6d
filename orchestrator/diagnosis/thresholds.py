"""Every threshold of the diagnosis, named, with the reason for its value.

"Here" in the reasons means the labelled real curves of tests/data/diagnosis/ (see
docs/diagnosis.md): the values were set on them and are checked against them by
tests/test_diagnosis_corpus.py.
"""

# A first epoch's mean train loss this far above the untrained model's validation loss is
# a blow-up. The factor is large because the two are measured differently (a mean over
# moving weights with dropout on, against one model in eval mode): here a train loss up
# to 1.4x the untrained validation loss is an ordinary first epoch (unscaled features,
# dropout, batch norm). Past the first epoch a train loss is compared with train losses.
BLOWUP = 3.0
# ... unless the model at the end of that epoch learned something (a spike in the first
# steps that training recovered from within the epoch): its accuracy beats chance, or
# its validation loss is below the chance band (WELL_BELOW times the lower of the
# untrained model's and the chance loss), the same test as everywhere else. Predicting
# roughly the class frequencies, all a net killed by a blow-up still does, lands inside
# that band on either side of the chance loss (here 5% below it at val_acc 0.35 on three
# classes, chance 0.33), not on it. An accuracy above chance is no recovery when the
# validation loss itself sits BLOWUP times above the untrained model's: that model is
# still thrown, confidently wrong on the rest (here val_acc 0.50 on five classes at a
# validation loss of 12, 7x the untrained model's, at Adam 1).
# "Barely moved": less than 5% below where it started.
BARELY_MOVED = 0.05
# Thrown above the start: a train loss above its own start (its first epoch's, or the
# untrained model's validation loss when that is higher) by this much (5%: more than the
# epoch-to-epoch wobble of a model that is not learning), or for a model that never beat
# chance a validation loss above the untrained model's by as much, while the rate was not
# rising ...
ABOVE_START = 1.05
# ... and the train loss is not a smooth descent: some epoch rose by more than this share
# over the one before. Batch-norm statistics can lift the validation loss of a net whose
# rate is far too small to move it (here 2.31 -> 2.6 at Adam 1e-5 while the train loss
# fell 2.52 -> 2.49 without a single rise); thrown weights make the train loss jump.
SMOOTH_RISE = 0.005
# "Beat chance": accuracy above the chance accuracy (the majority class's share) by this
# share of the headroom (1 - chance): 0.33 on ten balanced classes, 0.5 on three. Less is
# a broken model, not a weak one. The untrained model's accuracy is no floor: it is
# chance plus luck (an untrained net at 0.45 on three classes would make a run that rose
# 0.41 -> 0.59 "never beat chance").
CHANCE_MARGIN = 0.25
# A regression beats chance (predicting the training mean: R² 0) with an R² above 0 by
# more than a constant prediction's wobble around the validation mean (within +-0.02
# here: the split means differ).
R2_MARGIN = 0.02
# At the chance level: a validation loss no more than this share below the chance loss
# (the loss of predicting the class frequencies, or the mean for a regression; an
# untrained model's sits at or above it). A model there that never beat chance is
# not learning; one below this band has learned something, which underfitting needs as
# evidence before it can blame capacity.
NEAR_CHANCE = 0.10
WELL_BELOW = 1 - NEAR_CHANCE
# Lost what it learned: a model that beat chance, then gave back at least this share of
# its best score's gain over chance and of its validation loss's best fall below the
# chance loss, for PERSIST epochs running, back at chance or to the end (a weak model
# that hovers around the line between "beats chance" and not loses a few points, not
# half; a net thrown at a warm restart or a one-cycle peak loses 50-100%: here one from
# val_acc 0.94 to 0.25-0.49 for the rest of its run, never quite back at chance).
COLLAPSE = 0.5
# A rise is measured against the noise the curve itself shows: NOISE_K times a robust
# scale of its residuals from a 3-epoch running median (0 for a monotone curve) ...
NOISE_K = 3.0
# ... and must undo at least this share of the fall achieved so far (docs/tuning.md's example
# rises 0.7 after a fall of 1.4: half of it) ...
RISE_OF_FALL = 0.10
# ... and last to the end, for at least this many epochs (one bad epoch is noise) or
# for the last epoch alone when it undoes at least BIG_RISE of the fall.
PERSIST = 2
BIG_RISE = 0.30
# Unstable: over the last third of the epochs, the validation loss (one fixed data set,
# no dropout: it moves only when the weights do) goes back and forth by this much per
# epoch, in log terms, beyond its net trend (sum of |changes| - |net change|, per epoch:
# 0 for a curve that only falls or only rises). Here converged runs: 0-0.165; runs whose
# rate is too high: 0.195-0.67; the threshold sits between.
UNSTABLE = 0.18
# ... and the steps are what throws it: the train loss goes back and forth over the same
# epochs by UNSTABLE too (steps too large throw the weights, and so both curves: 0.19-1.05
# here), or the validation loss swings by this share of the chance loss per epoch beyond
# its trend (the size of the problem: 0.2 and more here at rates too large). A validation
# loss alone that bounces at a low level while the train loss falls smoothly is a sharp
# minimum seen through a small split, or batch-norm statistics: runs ending at val_acc 0.91-
# 0.98 with a smooth train loss bounce 0.07 <-> 0.18, which is 1-6% of the chance loss.
BOUNCE = 0.10
# Either way, an alarm needs swings large in absolute terms: the validation loss's
# back-and-forth beyond its trend, per epoch, at least this share of `Curves.unsure_loss`
# (ln 2 for a classification: as if this share of the examples went from sure to a coin
# flip and back every epoch; the chance loss for a regression: R² lost and won back).
# UNSTABLE alone is a share of the loss itself, and a loss near zero (a run at val_acc
# 0.97) swings by a large share of itself through a few examples; the chance loss is no
# yardstick for a classification either, growing with the number of classes as the
# swing of an unsure example does not. Here runs labelled healthy whose train loss swings
# too (dropout, small batches) bounce 0.04-0.063 of it (h7-cancer-dropout-es/04, read
# lr_too_high on fresh data at 0.044, 4% of its chance loss); runs whose rate is too high
# 0.078 and more (three labelled lr_too_high with healthy accepted, at 0.035-0.057,
# now read healthy).
SWING_FLOOR = 0.07
# Overfitting: the objective's last PERSIST+1 epochs all worse than its (3-epoch median)
# best by this much: accuracy, absolute (2 points: 7 of 360 digits images) ...
OVERFIT_ACC_DROP = 0.02
# ... or the validation loss, by this share of what one example adds to the mean loss
# going from sure to unsure (`Curves.unsure_loss`): for a classification, undecided
# between two classes, ln 2 (the chance loss, when that is lower); for a regression, the
# chance loss (R² lost). The validation loss is judged so even when the objective is
# accuracy: accuracy on a small split moves in steps and hides it. The best loss is no
# yardstick: it sits wherever the task and its label noise put it, so a share of it is
# too eager at tiny losses (the quickstart's best trial, 0.0476 -> 0.053, is a 13% rise
# and 0.8% of ln 2: 3 of 360 examples) and too lax at large ones. Nor is the chance loss
# of a classification, ln K for K classes: a model that overfits grows unsure between a
# few classes, not between all K, so on 20 classes (ln 20 = 3.0) it was three times as
# lax as on two (here 20-class runs whose validation loss rose 0.73 -> 0.81-0.85 while
# the train loss fell 0.36 -> 0.09 read healthy). A rise of the mean loss by this share of
# ln 2 is this share of the examples going from sure to a coin flip; more than the
# OVERFIT_ACC_DROP of examples that must flip for accuracy, as a loss moves with
# confidence before any prediction flips. Here healthy runs rise at most 2.5% of it (a
# 3-class table with label noise, 0.806 -> 0.824), overfitting ones 6.4% and more.
OVERFIT_LOSS_FLOOR = 0.04
# A validation error with no chance level (val_mae) overfits by this share of its best
# (a sustained 10% is the model growing confident on what it gets wrong, not a wobble);
# a loss or error still improving at the end gained this share of its level (tiny losses
# are not judged so: FAR_FROM_ZERO).
OVERFIT_LOSS_RISE = 0.10
# An objective still improving at the end is a rate too small only when the run had far
# to go: the validation loss's pace over the last third (per epoch, in log terms, between
# 3-epoch levels), kept up for as many epochs again as the run had, would take at least
# this off it (e^-0.5: 39% lower). A curve that decelerates into a level keeps gaining a
# little every epoch, and its best is then its last epoch, without being held back: here
# a 128-unit table net levelling at val_acc 0.88, its val loss falling 1.1% an epoch over
# its last 10 of 30 epochs (0.35, 29% lower), and runs accepted as healthy at 0.17-0.34;
# runs too slow that had gained their objective's best at the end go on at 0.68-2.3 (Adam
# 1e-4 on digits, val loss 0.275 -> 0.20 in its last 8 of 25 epochs, 3% an epoch: 0.76).
# The brake is a pace, not a share of the run's fall: the slow Adam run had fallen 2.31 ->
# 0.20, and its last third was 4% of that against the levelling net's 10%. Nor is it the
# deceleration alone: both runs' last third fell at a third of the pace of the one before.
FAR_TO_GO = 0.5
# ... and that pace would take a lot off it in absolute terms too: as many epochs again
# would gain at least this much in units of `Curves.unsure_loss` (a regression: 0.1 of
# R²; a classification: a tenth of the examples from a coin flip to sure). A relative
# pace says nothing about how far from done a run is: a loss already at a small share of
# the chance loss falls by a large share of itself for a small gain (here
# h7-energy-mse-adam/03, R² 0.85 at 16% of its chance loss, still falling 3% an epoch:
# 56% lower, but 0.087 of R², labelled healthy; the regressions labelled lr_too_low at
# R² 0.9-0.94, 0.058-0.063, with healthy accepted, read healthy since). Runs labelled
# too slow gain 0.10 and more (Adam 1e-4 on digits: 0.17). A train loss still falling
# steadily must gain as much by the same measure (0.12 and more here).
FAR_TO_GAIN = 0.10
# Fewer epochs cannot show a fall followed by a lasting rise or a levelling.
MIN_JUDGE = 5
# A trial the scheduler stopped before this share of its planned epochs is too short to
# judge unless something is already wrong (ASHA's rungs cut at 2, 6, 18 of 20 here).
JUDGE_SHARE = 0.5
# Not learning at a rate too large: at the chance level, the validation loss goes back
# and forth (in log terms, beyond its net trend, per epoch) more than it moves net per
# epoch, and by more than this. A rate too small moves it one way, downhill, however
# slowly: here its back-and-forth is at most 0.0001 (flat to the noise of its mean), or
# less than its net move (batch-norm statistics drifting under a tiny rate: 0.002 against
# a net 0.011 per epoch). Steps too large to descend throw it about without getting
# anywhere (0.0006-0.03 here, above their net move; an unnormalised ResNet at Adam
# 0.03-0.1 among them: its train loss as flat as a tiny rate's, its validation loss and
# accuracy jumping). The validation loss, not the train loss: a train loss is a mean
# over fresh dropout masks, which jitters at any rate (0.0013-0.015 here at rates too
# small).
WANDER = 0.0003
# ... or, for a validation loss that ended at the chance level, some epoch moved it by
# this share or more on its way (a rate that moves the loss that far in one epoch is
# not too small to learn: it found the class frequencies and nothing else; the runs here
# that do not learn at a tiny rate move it at most 6%, batch norm included; too large
# ones 20-100%). A loss still far above chance that falls fast is a slow start, not this.
FAST_MOVE = 0.25
# ... or the train loss moved by this share in one epoch (its first epoch's mean against
# its second's, mostly: steps that threw the weights within the first epoch, then the
# output bias found the class frequencies). A rate too small to learn moves its train
# loss as little as its weights: at most 5% per epoch here (dropout and batch norm
# included, no batch-norm lag as in the validation loss); rates too large 10-31%.
FAST_TRAIN_MOVE = 0.08
# Levelled off / still falling: the last third of the epochs brought less / at least this
# share of the whole fall (healthy runs here: 0-5%; slow ones 20-50%). A run planned for
# fewer than MIN_JUDGE epochs is judged by its last epoch alone.
STILL_FALLING = 0.15
# A stall is claimed (underfitting, a rate decayed too far) only over at least this many
# epochs, as a lasting rise is (PERSIST + 1): the last third of a run of 6-8 epochs is
# two epochs, whose 3-epoch medians lie one epoch apart, and one epoch that fell less
# than 15% of the fall is no plateau (an 8-epoch CNN still falling 0.05-0.07 an epoch,
# read as a capacity limit).
PLATEAU = PERSIST + 1
# The validation loss falls *with* the train loss over the last third when it falls by
# at least this share of the train loss's fall. A capacity limit levels both together; a
# model whose train loss keeps falling while validation stays put is fitting its training
# set beyond what generalises (it has capacity to spare, and more epochs would not help).
# Not so for a validation loss that never left the chance band: nothing generalises yet
# to fit beyond, and a train loss still falling steadily there is a slow start (here
# AdamW at 1e-5 on 200 rows of 1000 features: train 0.70 -> 0.32 over 50 epochs, still
# falling, the validation loss 0.700 -> 0.687 at the chance loss 0.698).
TRACKS = 0.5
# ... or when the train loss gained less than this share of the validation loss's level
# on it: two flat curves move together within the noise of their 3-epoch medians; a
# train loss pulling away from a flat validation loss gained 6-8% of it in the runs here.
FLAT = 0.02
# A capacity limit leaves the model unable to fit its own training set any better than
# the validation set: the two losses level off together. A train loss levelled below the
# validation loss by more than this share of the chance loss fits the training set beyond
# what generalises, which takes capacity to spare (here capacity limits end 0-5% of the
# chance loss apart; a regression with outliers whose train loss levels at half its
# validation loss, 16-33%; a table net still gaining, 9%).
UNDERFIT_GAP = 0.07
# Far from converged: a train loss above this share of the chance loss (runs that train
# well end near 0.1-3% of it).
FAR_FROM_ZERO = 0.05
# Far above what the data allows, for a loss that levelled off: above this share of the
# chance loss. Assumes labels that can be learned: with many wrong labels even a perfect
# model stays high (see docs/diagnosis.md). The chance loss depends only on the class
# frequencies (or the target's spread), which the splits share: a fair yardstick for a
# train loss too, unlike the untrained model's validation loss. A capacity limit needs
# both losses up there: a validation loss (the model in eval mode) below it shows the
# capacity was there and dropout or noise holds the train loss up (here a CNN at val_acc
# 0.94, its validation loss at 14% of the chance loss, its train loss at 31%; capacity
# limits end with the validation loss at 34-85%). An absolute-error loss is squared
# first (`_Curves.share`).
FAR_ABOVE = 0.25
# A schedule that decayed the rate by this factor has slowed the weights as much: a stall
# after it is the rate's doing, not evidence of the model's capacity. Tenfold, one step of
# docs/tuning.md's step decay: a steady fall slowed ten times brings its last third under
# STILL_FALLING of the fall, so it looks "levelled" whatever the capacity (here a ResNet
# at peak lr 1e-3 stalls at 87% of the chance loss as cosine takes the rate 33x down).
# The other way round, a run whose schedule decayed the rate as much and whose validation
# loss got within FAR_ABOVE of zero is not too slow for still gaining at its end: that is
# the annealing (a one-cycle ResNet at 5.5% of the chance loss gaining 0.29 -> 0.13 as the
# rate falls 8x in its last two epochs; the runs here too slow under a decayed schedule
# end at 67-88% of the chance loss).
DECAYED = 10.0
# ... but only a stall that came with the decay is the rate's doing: while the rate was
# within this factor of its peak (half: cosine's midpoint, a step or plateau schedule's
# first cut), the train loss must still have been falling (not levelled, as judged at
# the end). A run that levelled off at its full rate had reached what the model and the
# data allow; the decay that followed is no evidence (here runs at their best on hard
# tables and regressions, 52-61% of the chance loss, levelled at the peak rate, and a
# plateau schedule cut the rate *because* they had; the runs too slow under a decay were
# still falling steadily at half their peak rate).
RATE_CUT = 2.0
# A stall after a decay is a rate too small only for a run still far from done: its
# validation loss (3-epoch level at the end) at or above this share of the chance loss.
# One below it learned most of what there is, and a decay that levels it is the schedule
# annealing a run that worked (here h6-cnn-smoothing/04, val_acc 0.91 at 28% of the chance
# loss near its label-smoothing floor, and hard tables whose best runs end at 52-61% of it,
# h6-exponential-corr5/02-03 and h4-corr5-plateau among them: all labelled healthy). Runs
# too slow under a decay here end at 64-100% of it (two at 48% are given up for this).
FAR_FROM_DONE = 0.6
# ... and only for a run the rate held back: after the cut (`Curves.last_at_full_rate`),
# the train loss fell at least this share of what the pace at the full rate (its fall
# per unit of rate over the two epochs before the cut) would bring at the smaller rates
# that followed. In the small-step regime a loss falls in step with the rate, so a run the
# rate held back keeps about that pace: 0.84-1.8 here, never below 0.8 (a schedule that
# throws it about reads higher still). A run that had reached its floor slows far more
# than its rate did: the healthy h6-exponential-corr5/02 and /03 at 0.19 and 0.64, which
# the rule read lr_too_low before (as it did heldout4's three healthy alarms).
RATE_BOUND = 0.75

# -- the training's own signals (trainable/signals.py; ../shared/TUNING.md, "Reading the
# training itself"). Read only where a trial measured them; without them every rule
# above decides alone, as it did before. Here "here" is the dev_signals batch (67 curves
# of the s- sweeps), the only labelled curves with signals the rules were set on.
#
# The size of a step against the weights, ||dw||/||w||, median over an epoch's measured
# steps: about UPDATE_YARDSTICK for a healthy rate (the practice's yardstick), orders
# below it for a rate too small, orders above for one too large.
UPDATE_YARDSTICK = 1e-3
# Steps too small: at the rate's full strength (within RATE_CUT of its peak: a schedule's
# decay shrinks the steps of any run) an update ratio an order below the yardstick or
# less, with the loss still far from what the data allows (FAR_ABOVE): the rate holds the
# run back, whatever the curve's shape; a plateau there is no capacity limit (here the
# runs at SGD 1e-5..1e-4 and 512 units at SGD 1e-3 that never got far, 1e-6..5e-5, all
# labelled lr_too_low; every run labelled healthy, underfitting or overfitting steps
# 1.9e-4 and more at its full rate, the AdamW 1e-4 run with layer norm the least).
SMALL_STEPS = 1e-4
# Large steps: an update ratio an order above the yardstick or more over the last third
# is no rate too small, whatever the curve still gains at its end: steps that size are
# not what holds a run back (here a CNN at SGD 0.3 still improving at its end, 1.3-1.6e-2,
# labelled healthy, read lr_too_low from its curve alone; the runs labelled lr_too_low
# step 6e-3 at most).
LARGE_STEPS = 1e-2
# Vanishing gradients: the first weight layer's gradient norm against the last's (median
# over the measured steps of an epoch) two orders below 1 or less, from the first epoch
# on, in a net that does not learn. Here nets that learn, with or without norm, ReLU,
# tanh or sigmoid, are at 0.1-10 once learning; deep nets without normalisation that sit
# at chance at 1e-2 (8-layer ReLU) down to 1e-13 (14-layer sigmoid). From the first
# epoch: a ratio that collapses only after large first steps (layer-norm nets thrown at
# Adam 0.01, 1.1 and 0.09 at epoch 1, then 1e-3..1e-7) is the rate's doing, dead units,
# labelled lr_too_high.
VANISHED = 1e-2
# Exploding gradients: the global gradient norm grew by this factor or more from one
# epoch to a later one (two orders), while the training made no progress (the train loss
# no lower at the end than when the growth began). A learning net's gradient norm grows
# too, by up to 70x here (a 12-layer ReLU net as its loss fell 1.1 -> 0.3): the practice's
# "growing by orders before a divergence" is the growth with the loss going nowhere.
EXPLODING = 100.0
# Steps large enough to throw the weights: a validation loss that swings beyond
# SWING_FLOOR of the unsure loss under a train loss that falls smoothly reads as a rate
# too high when the update ratio over those epochs is half an order above the yardstick
# or more (10^-2.5); below it `_unstable` keeps asking the curves for a swinging train
# loss or a bounce of BOUNCE of the chance loss. Here a CNN with batch norm at SGD 0.3
# (labelled lr_too_high), its val loss 0.13 <-> 0.65 under a smooth train loss with a
# bounce of 9% of the chance loss, steps 9e-3; any value from 2e-3 to 8e-3 reads the
# same on the dev_signals batch, and no curve labelled healthy swings that much.
SWINGING_STEPS = 10 ** -2.5
# Steps too small to claim a capacity limit: a run the curves read as levelled off far
# above what the data allows (`_underfitting`'s evidence) whose update ratio over its
# last epochs at full rate is half an order below the yardstick or less (10^-3.5) is
# held back by its rate, not by its size: 1024 units at SGD 1e-3 on a 3-class synthetic
# set level at 51% of the chance loss stepping 2-4e-4, and at 1e-2 the same net steps
# 1e-3 and reaches 35% (tests/test_diagnosis_signals.py). No labelled curve of the
# dev_signals batch falls here: the runs labelled underfitting step 3.7e-3 and more, the
# 8-unit run read underfitting (labelled lr_too_low, healthy accepted) 1.2e-3.
SLOW_STEPS = 10 ** -3.5
