"""The training loop of one trial, independent of Ray.

`Trainer` owns the model, optimiser, schedule, early stopping and curves of one
trial and advances one epoch per `train_epoch()` call. `save`/`load` hold its
full state (model, optimiser, schedule state, every RNG, counters, curves), so a
trial restored from a checkpoint continues exactly as if it had never stopped.
The Ray side (`tune_entry.py`) only feeds it a config and reports what it returns.
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from orchestrator.diagnosis import diagnose
from orchestrator.trainable.config import TrialConfig
from orchestrator.trainable.data import load_dataset
from orchestrator.trainable.early_stopping import EarlyStopping
from orchestrator.trainable.models import build_model
from orchestrator.trainable.optim import build_optimizer
from orchestrator.trainable.scaling import effective_lr
from orchestrator.trainable.schedules import Plateau, lr_at

STATE_FILE, META_FILE = "state.pt", "meta.json"
_NO_AUTOCAST = contextlib.nullcontext()


def trial_seed(spec_seed: int, trial_index: int) -> int:
    """One 32-bit seed per (spec seed, trial index): independent streams per trial."""
    return int(np.random.SeedSequence([spec_seed, trial_index]).generate_state(1)[0])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def chance_level(y_train: torch.Tensor, y_val: torch.Tensor, num_classes: int) -> dict:
    """Validation loss and accuracy of always predicting the training split's class
    frequencies (ln K for K balanced classes; the majority class's share)."""
    counts = torch.bincount(y_train.cpu(), minlength=num_classes).double()
    p = (counts + 1) / (counts.sum() + num_classes)  # +1: a class absent from train
    y_val = y_val.cpu()
    return {"chance_val_loss": float(-p.log()[y_val].mean()),
            "chance_val_acc": float((y_val == p.argmax()).double().mean())}


class Trainer:
    def __init__(self, config: TrialConfig, trial_index: int = 0, device: str = "cpu"):
        self.cfg, self.train_cfg = config, config.train
        self.device = torch.device(device)
        self.seed = trial_seed(config.seed, trial_index)
        seed_everything(self.seed)
        cfg = self.train_cfg
        self.data = load_dataset(cfg.dataset, config.seed, self.device)
        self.model = build_model(cfg.model, self.data.input_shape, self.data.num_classes)
        self.model.to(self.device)
        n = len(self.data.x_train)
        self.batch_size = min(cfg.batch_size, n)  # a batch larger than the data is the data
        self.effective_lr = effective_lr(cfg.optimizer.lr, self.batch_size, cfg.batch_scaling)
        self.optimizer = build_optimizer(self.model.parameters(), cfg.optimizer, self.effective_lr)
        self.generator = torch.Generator().manual_seed(self.seed)
        self.steps_per_epoch = math.ceil(n / self.batch_size)
        self.total_steps = cfg.epochs * self.steps_per_epoch
        mode = config.objective.mode
        self.early = EarlyStopping(mode, cfg.early_stopping.patience, cfg.early_stopping.min_delta)
        self.plateau = (
            Plateau.from_config(cfg.schedule, mode) if cfg.schedule.name == "plateau" else None
        )
        self.autocast = dict(
            device_type=self.device.type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16"
        )
        self.epoch = self.step = 0
        self.time_total_s = 0.0
        self.curves: dict[str, list[float]] = {
            "train_loss": [], "val_loss": [], "val_acc": [], "lr": []}
        # the untrained model's validation loss and accuracy (one evaluation before the
        # first step) and the chance level: what the diagnosis measures training against
        self.initial: dict[str, float] = {}
        self.chance = chance_level(self.data.y_train, self.data.y_val, self.data.num_classes)
        self.stop_reason: str | None = None
        self.restored_from_epoch = 0  # the checkpoint's epoch when resumed, else 0
        self.checkpoint_owner: str | None = None  # the trial whose checkpoint was loaded

    # -- one epoch -------------------------------------------------------
    def lr_of_step(self, step: int) -> float:
        scale = self.plateau.scale if self.plateau else 1.0
        return lr_at(step, self.effective_lr, self.train_cfg.schedule,
                     self.steps_per_epoch, self.total_steps, scale)

    def _train_one_epoch(self) -> float:
        x, y = self.data.x_train, self.data.y_train
        order = torch.randperm(len(x), generator=self.generator).to(self.device)
        clip = self.train_cfg.optimizer.grad_clip
        self.model.train()
        # losses stay on the device until the epoch ends: no sync per step
        losses, sizes = [], []
        for idx in order.split(self.batch_size):
            lr = self.lr_of_step(self.step)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            with self._autocast():
                loss = F.cross_entropy(self.model(x[idx]), y[idx])
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if clip:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip)
            self.optimizer.step()
            losses.append(loss.detach())
            sizes.append(len(idx))
            self.step += 1
        weights = torch.tensor(sizes, device=self.device, dtype=torch.float32)
        return (torch.stack(losses).float() * weights).sum().item() / len(x)

    def _autocast(self):
        # entering even a disabled autocast costs time on every step: skip it in fp32
        return torch.autocast(**self.autocast) if self.autocast["enabled"] else _NO_AUTOCAST

    @torch.no_grad()
    def evaluate(self) -> tuple[float, float]:
        """(loss, accuracy) on the validation split."""
        self.model.eval()
        x, y = self.data.x_val, self.data.y_val
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), device=self.device, dtype=torch.long)
        size = self.train_cfg.eval_batch_size
        for start in range(0, len(x), size):
            xb, yb = x[start:start + size], y[start:start + size]
            with self._autocast():
                logits = self.model(xb)
            loss_sum += F.cross_entropy(logits.float(), yb, reduction="sum")
            correct += (logits.argmax(1) == yb).sum()
        return loss_sum.item() / len(x), correct.item() / len(x)

    def train_epoch(self) -> dict:
        """Run the next epoch; returns its metrics (the row reported to Tune)."""
        if self.epoch == 0 and not self.initial:
            loss, acc = self.evaluate()
            self.initial = {"initial_val_loss": loss, "initial_val_acc": acc}
        started = time.perf_counter()
        self.epoch += 1
        lr = self.lr_of_step(self.step)
        train_loss = self._train_one_epoch()
        val_loss, val_acc = self.evaluate()
        epoch_s = time.perf_counter() - started
        self.time_total_s += epoch_s
        self.curves["train_loss"].append(train_loss)
        self.curves["val_loss"].append(val_loss)
        self.curves["val_acc"].append(val_acc)
        self.curves["lr"].append(lr)

        metric = {"train_loss": train_loss, "val_loss": val_loss, "val_acc": val_acc}[
            self.cfg.objective.metric
        ]
        patience_hit = self.early.update(metric, self.epoch)
        if self.plateau and math.isfinite(metric):
            self.plateau.update(metric, self.effective_lr)
        if not (math.isfinite(train_loss) and math.isfinite(val_loss)):
            self.stop_reason = "diverged"
        elif self.epoch >= self.train_cfg.epochs:
            self.stop_reason = "completed"
        elif patience_hit:
            self.stop_reason = "early_stopping"
        return self.metrics(lr=lr, epoch_s=epoch_s)

    def metrics(self, lr: float, epoch_s: float) -> dict:
        name = self.cfg.objective.metric
        return {
            "epoch": self.epoch,
            "train_loss": self.curves["train_loss"][-1],
            "val_loss": self.curves["val_loss"][-1],
            "val_acc": self.curves["val_acc"][-1],
            "lr": lr,
            "batch_size": self.batch_size,
            "effective_lr": self.effective_lr,
            "epoch_s": epoch_s,
            "trial_time_s": self.time_total_s,
            "best_epoch": self.early.best_epoch,
            f"best_{name}": self.early.best,
            "stop_reason": self.stop_reason,
            **self.initial,
            **self.chance,
            **self.diagnosis(),
            "trial_seed": self.seed,
            "restored_from_epoch": self.restored_from_epoch,
        }

    def diagnosis(self) -> dict[str, str]:
        """The diagnosis of the curves so far, as the trial knows them (the results
        tables diagnose again once they know why the trial ended)."""
        curves = self.curves
        history = [
            {"epoch": i + 1, "train_loss": t, "val_loss": v, "val_acc": a, "lr": lr}
            for i, (t, v, a, lr) in enumerate(zip(curves["train_loss"], curves["val_loss"],
                                                  curves["val_acc"], curves.get("lr", [])))
        ]
        trial = {"stop_reason": self.stop_reason, "config.epochs": self.train_cfg.epochs,
                 **self.initial, **self.chance}
        objective = self.cfg.objective
        found = diagnose(history, trial, objective.metric, objective.mode)
        return {"diagnosis": found.label, "diagnosis_reason": found.reason}

    @property
    def finished(self) -> bool:
        return self.stop_reason is not None

    # -- exact checkpoints -------------------------------------------------
    def save(self, folder: str | Path, owner: str | None = None) -> None:
        """Write the whole state to `folder`; `owner` names the trial it belongs to (PBT
        hands one trial's checkpoint to another)."""
        folder = Path(folder)
        np_state = np.random.get_state()
        torch.save(
            {
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "torch_rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
                "generator": self.generator.get_state(),
                "numpy_keys": torch.from_numpy(np_state[1].astype(np.int64)),
            },
            folder / STATE_FILE,
        )
        meta = {
            "owner": owner,
            "epoch": self.epoch,
            "step": self.step,
            "time_total_s": self.time_total_s,
            "curves": self.curves,
            "initial": self.initial,
            "stop_reason": self.stop_reason,
            "early_stopping": self.early.state_dict(),
            "plateau": self.plateau.state_dict() if self.plateau else None,
            "numpy_rng": [np_state[0], int(np_state[2]), int(np_state[3]), float(np_state[4])],
            "python_rng": [random.getstate()[0], list(random.getstate()[1]), random.getstate()[2]],
        }
        (folder / META_FILE).write_text(json.dumps(meta))

    def load(self, folder: str | Path) -> None:
        folder = Path(folder)
        state = torch.load(folder / STATE_FILE, map_location=self.device, weights_only=True)
        meta = json.loads((folder / META_FILE).read_text())
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"].cpu())
        if state["cuda_rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda_rng"]])
        self.generator.set_state(state["generator"].cpu())
        kind, pos, has_gauss, cached = meta["numpy_rng"]
        keys = state["numpy_keys"].numpy().astype(np.uint32)
        np.random.set_state((kind, keys, pos, has_gauss, cached))
        version, internal, gauss = meta["python_rng"]
        random.setstate((version, tuple(internal), gauss))
        self.epoch, self.step = meta["epoch"], meta["step"]
        self.restored_from_epoch = self.epoch
        self.checkpoint_owner = meta.get("owner")
        self.time_total_s = meta["time_total_s"]
        self.curves = meta["curves"]
        self.curves.setdefault("lr", [])
        self.initial = meta.get("initial") or {}
        self.stop_reason = meta["stop_reason"]
        self.early.load_state_dict(meta["early_stopping"])
        if self.plateau and meta["plateau"]:
            self.plateau.load_state_dict(meta["plateau"])
