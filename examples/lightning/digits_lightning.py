"""A Lightning project, run by the sweep as each trial: the module and the data are the
user's own; the sweep's one line is `SweepCallback(trial)` in the Trainer's callbacks and
its `ckpt_path` in `fit` (None on a fresh start, the restored checkpoint after a resume)."""

import lightning as L
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from orchestrator.integrations.lightning import SweepCallback


class DigitsMLP(L.LightningModule):
    def __init__(self, hidden: int, lr: float):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, 10))

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self(x), y)
        self.log("train_loss", loss, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x)
        self.log("val_loss", F.cross_entropy(logits, y))
        self.log("val_acc", (logits.argmax(1) == y).float().mean())

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr, momentum=0.9)


def loaders(batch_size: int):
    digits = load_digits()
    x = torch.tensor(digits.data, dtype=torch.float32) / 16.0
    y = torch.tensor(digits.target)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    val, train = order[:360], order[360:]  # the same split for every trial
    return (DataLoader(TensorDataset(x[train], y[train]), batch_size=batch_size,
                       shuffle=True),
            DataLoader(TensorDataset(x[val], y[val]), batch_size=360))


def train(config: dict, trial) -> None:
    L.seed_everything(trial.seed, verbose=False)
    callback = SweepCallback(trial)
    trainer = L.Trainer(max_epochs=config["epochs"], callbacks=[callback],
                        accelerator="gpu" if trial.device == "cuda" else "cpu", devices=1,
                        logger=False, enable_progress_bar=False, enable_model_summary=False)
    train_loader, val_loader = loaders(config["batch_size"])
    trainer.fit(DigitsMLP(config["hidden"], config["lr"]), train_loader, val_loader,
                ckpt_path=callback.ckpt_path)
