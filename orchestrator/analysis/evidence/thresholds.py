"""The minimum of evidence below which no claim is made, and how far a range moves.
Each number with the reason for it; docs/iterate.md lists them."""

from __future__ import annotations

# judged trials (ended, not errored) before any claim: below it, patterns are mostly chance
MIN_TRIALS = 8
# "the good trials": the top fifth of the trials that learned something, 3 to 5 of them
TOP_SHARE = 0.2
MIN_GOOD, MAX_GOOD = 3, 5
# a value in the outer tenth of its range (log axis for a log-distributed key) is at its edge
EDGE = 0.1
# the best lies at an edge when the best trial and at least half of the good ones are
# there (an end choice: use it), and as many good trials would be there by chance at most
# this often, given how many trials were (`chance.tail_chance`): the best of three
# choices is at an end two times in three
EDGE_SHARE = 0.5
EDGE_CHANCE = 0.05
# an end region (or a choice) is dead when at least this many trials in it all failed one
# way, no good trial among them, a trial beyond it that did not, ...
MIN_DEAD = 3
# ... and so many failures would fall there by chance at most this often, given how many
# trials of the sweep failed that way (`chance.all_chance`): when nearly every trial
# failed (a rate far too low), the failures in one corner of another key say nothing
DEAD_CHANCE = 0.05
# a choice is dropped as weak when at least this many trials used it, none of them good,
# all worse than the median of the trials with other values, and no more likely by chance
# than DEAD_CHANCE (so many trials drawn at random all among the worse ones)
MIN_WEAK = 5
# a range is narrowed only when the good trials lie closer together than as many trials
# drawn at random would with this chance at most (`chance.span_chance`)
NARROW_CHANCE = 0.05
# "no measurable effect": the good trials are as spread (or as mixed over the choices) as
# chance makes them at least this often, and no other rule spoke
NO_EFFECT_CHANCE = 0.5
# past an edge, a range widens by half of what is left of it once its dead ends are cut
# and it is narrowed around the good trials (a log range of two decades gains one), and
# by a tenth of its old width at least
WIDEN = 0.5
MIN_WIDEN = 0.1
# a narrowed range: the good trials' span and half of it again on each side, but at least
# a tenth of the old width on each side (a few trials are not the optimum's exact place)
PAD = 0.5
MIN_PAD = 0.1
