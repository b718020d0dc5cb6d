"""What a sweep's tables say: leaderboard, advice, compute account, plots, the report
and the LR range test's output. Reads results; never imports Ray at import time."""
