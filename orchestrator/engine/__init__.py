"""Spec -> Ray Tune: run and resume a sweep (`run`, `resume`), the search space, the
scheduler and searcher factories, the ASHA replay on resume, stoppers, the Ray session
and signal handling."""
