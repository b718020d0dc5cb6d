"""A Hugging Face Trainer project, run by the sweep as each trial: a tiny BERT built from
its config (nothing is downloaded) learns a synthetic task, whether a sequence of tokens
opens with a "positive" token. The sweep's one line is `SweepCallback(trial)` in the
Trainer's callbacks and its `ckpt_path` in `train` (None on a fresh start, the restored
checkpoint folder after a resume)."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # built from its config: nothing to fetch

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch.utils.data import Dataset  # noqa: E402
from transformers import (  # noqa: E402
    BertConfig,
    BertForSequenceClassification,
    Trainer,
    TrainingArguments,
    set_seed,
)

from orchestrator.integrations.transformers import SweepCallback  # noqa: E402

VOCAB, LENGTH = 32, 16
POSITIVE = torch.arange(4, 18)  # half of the tokens (0-3 are left for special ones)


class OpeningTask(Dataset):
    """Token sequences, labelled 1 when their first token is a positive one."""

    def __init__(self, rows: int, seed: int):
        g = torch.Generator().manual_seed(seed)
        self.ids = torch.randint(4, VOCAB, (rows, LENGTH), generator=g)
        self.labels = torch.isin(self.ids[:, 0], POSITIVE).long()

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, i):
        return {"input_ids": self.ids[i], "labels": self.labels[i]}


def accuracy(prediction) -> dict:
    return {"accuracy": float(np.mean(prediction.predictions.argmax(-1) ==
                                      prediction.label_ids))}


def train(config: dict, trial) -> None:
    set_seed(trial.seed)
    model = BertForSequenceClassification(BertConfig(
        vocab_size=VOCAB, hidden_size=config["hidden"], num_hidden_layers=config["layers"],
        num_attention_heads=2, intermediate_size=2 * config["hidden"],
        max_position_embeddings=LENGTH, num_labels=2))
    callback = SweepCallback(trial, metrics={"eval_accuracy": "val_acc"})
    args = TrainingArguments(
        output_dir="hf_output", num_train_epochs=config["epochs"],
        learning_rate=config["lr"], per_device_train_batch_size=config["batch_size"],
        per_device_eval_batch_size=256, seed=trial.seed, use_cpu=trial.device == "cpu",
        report_to=[], disable_tqdm=True, save_strategy="no", logging_strategy="no")
    trainer = Trainer(model=model, args=args, train_dataset=OpeningTask(config["rows"], 0),
                      eval_dataset=OpeningTask(256, 1), compute_metrics=accuracy,
                      callbacks=[callback])
    trainer.train(resume_from_checkpoint=callback.ckpt_path)
