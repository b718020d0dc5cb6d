"""The Lightning and Hugging Face Trainer callbacks, in-process with the real frameworks:
each epoch reported once, numbered from 1, with that epoch's own training loss (not the
stale one `on_validation_epoch_end` sees); the sanity check never reported; the
framework's own checkpoint kept through the trial, and a stopped trial resumed from it
continuing exactly where an uninterrupted one goes; a missing extra is one line.

The `trial` here stands in for Ray Tune's side only (the sweeps in
test_integrations_sweeps.py run the examples on real Ray): it keeps reports, round-trips
the checkpoint as the real one does (torch.save, then torch.load with weights_only), and
stops the trial by raising SystemExit at a report, as Ray Tune does."""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile

import pytest
import torch

from tests.helpers import invoke


class RecordingTrial:
    """The `trial` interface a loop gets (report, restore), recording what it is sent."""

    def __init__(self, checkpoint: object = None, stop_at: int | None = None):
        self.rows: list[dict] = []
        self.checkpoint = checkpoint
        self.stop_at = stop_at
        self.seed, self.device, self.cpus = 0, "cpu", 1

    def restore(self):
        if self.checkpoint is None:
            return None
        buffer = io.BytesIO()
        torch.save(self.checkpoint, buffer)
        buffer.seek(0)
        return torch.load(buffer, weights_only=True)

    def report(self, epoch, checkpoint=None, **metrics):
        self.rows.append({"epoch": epoch, **metrics})
        self.checkpoint = checkpoint
        if epoch == self.stop_at:
            raise SystemExit(0)  # what Ray Tune raises at the report of a stopped trial

    @property
    def epochs(self) -> list[int]:
        return [row["epoch"] for row in self.rows]


# -- Lightning -------------------------------------------------------------------------

def lightning_module():
    import lightning as L
    from torch import nn
    from torch.nn import functional as F

    class Tiny(L.LightningModule):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.net = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 2))
            self.epoch_losses: dict[int, list[float]] = {}

        def training_step(self, batch, batch_idx):
            x, y = batch
            loss = F.cross_entropy(self.net(x), y)
            self.epoch_losses.setdefault(self.current_epoch + 1, []).append(loss.item())
            self.log("train_loss", loss, on_step=False, on_epoch=True)
            return loss

        def validation_step(self, batch, batch_idx):
            x, y = batch
            logits = self.net(x)
            self.log("val_loss", F.cross_entropy(logits, y))
            self.log("val/acc", (logits.argmax(1) == y).float().mean())

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.2, momentum=0.9)

    return Tiny()


def lightning_fit(trial: RecordingTrial, epochs: int = 4, **trainer_options):
    import lightning as L
    from torch.utils.data import DataLoader, TensorDataset

    from orchestrator.integrations.lightning import SweepCallback

    g = torch.Generator().manual_seed(1)
    x = torch.randn(128, 6, generator=g)
    y = (x[:, 0] - x[:, 1] > 0).long()
    loader = DataLoader(TensorDataset(x, y), batch_size=32)  # no shuffle: exact repeats
    callback = SweepCallback(trial, metrics={"val/acc": "val_acc"})
    module = lightning_module()
    trainer = L.Trainer(max_epochs=epochs, callbacks=[callback], logger=False,
                        enable_progress_bar=False, enable_model_summary=False,
                        **trainer_options)
    try:
        trainer.fit(module, loader, loader, ckpt_path=callback.ckpt_path)
    except SystemExit:
        pass  # the trial was stopped at a report
    return module, trainer, callback


def test_lightning_reports_each_epoch_once_with_its_own_train_loss():
    trial = RecordingTrial()
    module, trainer, _ = lightning_fit(trial)
    # the sanity check's validation ran first, and is not a row
    assert trial.epochs == [1, 2, 3, 4]
    for row in trial.rows:
        losses = module.epoch_losses[row["epoch"]]
        # this epoch's mean training loss: reported from on_validation_epoch_end, epoch 1
        # would have none and every later epoch the one before
        assert row["train_loss"] == pytest.approx(sum(losses) / len(losses), rel=1e-5)
        assert {"val_loss", "val_acc"} <= set(row) and "val/acc" not in row  # renamed
    assert [type(c).__name__ for c in trainer.checkpoint_callbacks] == ["SweepCallback"]
    # the checkpoint is Lightning's own file
    saved = torch.load(io.BytesIO(trial.checkpoint), weights_only=False)
    assert saved["epoch"] == 3 and "state_dict" in saved and "optimizer_states" in saved


def test_a_stopped_lightning_trial_resumes_from_its_checkpoint_exactly():
    straight = RecordingTrial()
    lightning_fit(straight, epochs=5)
    stopped = RecordingTrial(stop_at=2)
    lightning_fit(stopped, epochs=5)
    assert stopped.epochs == [1, 2]  # the stop ended fit at epoch 2's report
    resumed = RecordingTrial(checkpoint=stopped.checkpoint)
    _, _, callback = lightning_fit(resumed, epochs=5)
    assert callback.ckpt_path is not None and callback.ckpt_path.endswith(".ckpt")
    assert resumed.epochs == [3, 4, 5]
    for row, expected in zip(resumed.rows, straight.rows[2:]):
        assert row == pytest.approx(expected, rel=1e-5)
    # restored at its last epoch (a driver killed as it ended): fit has nothing to run
    ended = RecordingTrial(checkpoint=straight.checkpoint)
    lightning_fit(ended, epochs=5)
    assert ended.rows == []


def test_lightning_reports_only_epochs_that_validated():
    trial = RecordingTrial()
    lightning_fit(trial, epochs=4, check_val_every_n_epoch=2)
    assert trial.epochs == [2, 4]


def test_a_fresh_lightning_callback_has_no_checkpoint_path():
    from orchestrator.integrations.lightning import SweepCallback

    assert SweepCallback(RecordingTrial()).ckpt_path is None
    with pytest.raises(TypeError, match="not a Lightning file but a dict"):
        SweepCallback(RecordingTrial(checkpoint={"epoch": 1}))


# -- Hugging Face Trainer --------------------------------------------------------------

def hf_train(trial: RecordingTrial, output_dir, epochs: int = 2, **arguments):
    from transformers import (
        BertConfig,
        BertForSequenceClassification,
        Trainer,
        TrainingArguments,
        set_seed,
    )

    from orchestrator.integrations.transformers import SweepCallback

    class Rows(torch.utils.data.Dataset):
        def __init__(self, n, seed):
            g = torch.Generator().manual_seed(seed)
            self.ids = torch.randint(4, 32, (n, 8), generator=g)
            self.labels = (self.ids[:, 0] > 17).long()

        def __len__(self):
            return len(self.ids)

        def __getitem__(self, i):
            return {"input_ids": self.ids[i], "labels": self.labels[i]}

    set_seed(0)
    model = BertForSequenceClassification(BertConfig(
        vocab_size=32, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=8, num_labels=2))
    callback = SweepCallback(trial, metrics={"eval_accuracy": "val_acc"})
    args = TrainingArguments(output_dir=str(output_dir), num_train_epochs=epochs,
                             per_device_train_batch_size=32, learning_rate=3e-3, seed=0,
                             use_cpu=True, report_to=[], disable_tqdm=True, **arguments)
    trainer = Trainer(model=model, args=args, train_dataset=Rows(128, 0),
                      eval_dataset=Rows(64, 1), callbacks=[callback],
                      compute_metrics=lambda p: {
                          "accuracy": float((p.predictions.argmax(-1) == p.label_ids).mean())})
    try:
        trainer.train(resume_from_checkpoint=callback.ckpt_path)
    except SystemExit:
        pass
    return callback


def test_the_hf_trainer_reports_each_epoch_once_and_resumes_exactly(tmp_path):
    straight = RecordingTrial()
    hf_train(straight, tmp_path / "straight")
    assert straight.epochs == [1, 2]
    for row in straight.rows:
        assert set(row) == {"epoch", "train_loss", "lr", "val_loss", "val_acc"}
    # the packed checkpoint is the Trainer's own folder, and none is left in output_dir
    with tarfile.open(fileobj=io.BytesIO(straight.checkpoint)) as tar:
        names = tar.getnames()
    assert "checkpoint-8/trainer_state.json" in names and "checkpoint-8/optimizer.pt" in names
    assert not list((tmp_path / "straight").glob("checkpoint-*"))

    stopped = RecordingTrial(stop_at=1)
    hf_train(stopped, tmp_path / "stopped")
    assert stopped.epochs == [1]
    resumed = RecordingTrial(checkpoint=stopped.checkpoint)
    callback = hf_train(resumed, tmp_path / "resumed")
    assert callback.ckpt_path.endswith("checkpoint-4")
    assert resumed.epochs == [2]
    for row, expected in zip(resumed.rows, straight.rows[1:]):
        assert row == pytest.approx(expected, rel=1e-4)
    ended = RecordingTrial(checkpoint=straight.checkpoint)  # restored at its last epoch
    hf_train(ended, tmp_path / "ended")
    assert ended.rows == []


def test_the_hf_callback_evaluates_each_epoch_whatever_the_strategies(tmp_path):
    trial = RecordingTrial()
    hf_train(trial, tmp_path / "steps", epochs=2, eval_strategy="steps", eval_steps=3,
             logging_strategy="steps", logging_steps=1, save_strategy="steps", save_steps=3)
    assert trial.epochs == [1, 2]  # the mid-epoch evaluations are not rows
    with pytest.raises(ValueError, match="save_strategy='best'"):
        hf_train(RecordingTrial(), tmp_path / "best", epochs=1, eval_strategy="epoch",
                 save_strategy="best", metric_for_best_model="loss")


# -- imported only when used; a missing extra is one line ------------------------------

def test_the_package_imports_no_framework():
    code = ("import sys, orchestrator.integrations, orchestrator.cli; "
            "print(sorted(m for m in ('lightning', 'transformers', 'wandb') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("framework, extra", [("lightning", "lightning"),
                                              ("transformers", "transformers")])
def test_a_missing_framework_is_one_line_naming_the_extra(tmp_path, monkeypatch, framework,
                                                          extra):
    for name in [n for n in sys.modules if n.split(".")[0] == framework] + [framework]:
        monkeypatch.setitem(sys.modules, name, None)  # `import framework...` fails
    monkeypatch.delitem(sys.modules, f"orchestrator.integrations.{framework}", raising=False)
    monkeypatch.delitem(sys.modules, "my_train", raising=False)
    (tmp_path / "my_train.py").write_text(
        f"from orchestrator.integrations.{framework} import SweepCallback\n\n"
        "def train(config, trial):\n    SweepCallback(trial)\n")
    (tmp_path / "spec.yaml").write_text(
        "name: x\nmetric: val_acc\ntrain: {function: 'my_train:train', epochs: 2}\n")
    monkeypatch.chdir(tmp_path)
    result = invoke("validate", "spec.yaml")
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "error: spec.yaml: train.function: cannot import 'my_train' (ModuleNotFoundError: "
        f"{framework} is not installed here: pip install 'ray-sweep-orchestrator[{extra}]')")

