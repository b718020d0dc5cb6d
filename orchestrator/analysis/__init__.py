"""What a sweep's tables say: leaderboard, advice, compute account, plots (the LR range
test's too), the report. Reads results; never imports Ray at import time."""
