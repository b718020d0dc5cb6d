"""Spec -> Ray Tune: run and resume a sweep (`run`, `resume`), the search space, the
scheduler and searcher factories, stoppers, the Ray session and signal handling,
`sweep lr-find` run in-process; every touch of Ray's private names in one seam,
`tune_compat/`."""
