"""The shared PyTorch trainable that every trial runs: data, models, optimisers, LR
schedules, batch scaling, early stopping, the trainer with exact checkpoints, the LR range
test and the Ray Tune entry point. It receives its settings (`orchestrator.spec.settings`)
and never imports the engine, the results or the CLI."""
