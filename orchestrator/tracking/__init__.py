"""Mirrors of a sweep in the tracking tools people already use (MLflow, TensorBoard, W&B),
written from the driver as the sweep runs and replayed from the tables by `sweep track`.
The tables stay the record: a tool that is down costs a warning, never a trial."""
