"""The compute account of a sweep: what early termination saved, as a pure function
of the two tables."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from orchestrator.results import schema


@dataclass
class ComputeAccount:
    trials: int
    epochs_run: int
    epochs_full: int  # every trial to its full budget (its own `epochs` setting)
    seconds_run: float  # training time, summed over trials
    seconds_full: float  # the same at each trial's mean epoch time, to its full budget
    by_stop_reason: pd.DataFrame = field(repr=False)  # trials, epochs run, seconds
    by_node: pd.DataFrame = field(repr=False)

    @property
    def saved(self) -> float:
        """Share of the full budget's epochs that were not run."""
        return 1 - self.epochs_run / self.epochs_full if self.epochs_full else 0.0

    def sentence(self) -> str:
        return (f"early termination saved {self.saved:.0%} of the compute "
                f"({self.epochs_run:,} of {self.epochs_full:,} epochs run; "
                f"{self.seconds_run:,.0f} of an estimated {self.seconds_full:,.0f} "
                "trial-seconds)")


def compute_account(trials: pd.DataFrame, history: pd.DataFrame) -> ComputeAccount:
    epochs = history.groupby(schema.TRIAL_ID)["epoch"].count()
    seconds = history.groupby(schema.TRIAL_ID)["epoch_s"].sum()
    frame = trials.set_index(schema.TRIAL_ID)
    frame = frame.assign(
        run=epochs.reindex(frame.index).fillna(0).astype(int),
        seconds=seconds.reindex(frame.index).fillna(0.0),
        budget=pd.to_numeric(frame.get("config.epochs"), errors="coerce"),
    )
    frame["budget"] = frame["budget"].fillna(frame["run"]).astype(int)
    per_epoch = (frame["seconds"] / frame["run"].where(frame["run"] > 0)).fillna(0.0)
    full_seconds = float((per_epoch * frame["budget"]).sum())
    reason = frame[schema.STOP_REASON].fillna("unfinished")
    # nodes by address and Ray's node id (several nodes can share one host's address)
    node = frame["node_ip"].fillna("unknown") if "node_ip" in frame else pd.Series(
        "unknown", index=frame.index)
    if "node_id" in frame and frame["node_id"].notna().any():
        node = node + " " + frame["node_id"].fillna("").str[:8]

    def summary(key) -> pd.DataFrame:
        grouped = frame.groupby(key)
        return pd.DataFrame({"trials": grouped.size(), "epochs": grouped["run"].sum(),
                             "seconds": grouped["seconds"].sum().round(1)})

    return ComputeAccount(
        trials=len(frame), epochs_run=int(frame["run"].sum()),
        epochs_full=int(frame["budget"].sum()), seconds_run=float(frame["seconds"].sum()),
        seconds_full=full_seconds, by_stop_reason=summary(reason), by_node=summary(node),
    )
