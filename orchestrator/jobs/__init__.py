"""Sweeps as Ray jobs: the Jobs API client (`client`: submit, follow, list, stop) and
what travels with a job (`staging`: the spec, its data files, the shared-storage check)."""
