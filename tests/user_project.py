"""A user's project, written where a user keeps one (a folder outside the repository):
their data factory (tensors or a torch Dataset; classification or regression), their
model factory, and a spec that names both. Tests of users' code build theirs here."""

from __future__ import annotations

import os
import subprocess
import textwrap
from pathlib import Path

import pandas as pd
import yaml

from orchestrator.results import schema
from tests.helpers import SWEEP

DATA = '''
"""The user's data: a seeded table, as tensors or as a torch Dataset."""
import torch
from torch.utils.data import Dataset, TensorDataset


class Rows(TensorDataset):
    classes = ["no", "yes"]  # torchvision's convention: the class count


def load(seed, n=400, features=6, kind="tensors", task="classification", called=None):
    if called:  # a factory must never run in the driver: this file says it did
        open(called, "w").write("called")
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, features, generator=g)
    w = torch.linspace(-1, 1, features)
    if task == "classification":
        y = (x @ w > 0).long()
    else:
        y = x @ w + 0.1 * torch.randn(n, generator=g)
    cut = int(n * 0.8)
    train, val = (x[:cut], y[:cut]), (x[cut:], y[cut:])
    if kind == "dataset":
        return Rows(*train), Rows(*val)
    return train, val
'''

MODELS = '''
"""The user's model."""
from torch import nn


def build(input_shape, num_outputs, width=16, dropout=0.0):
    return nn.Sequential(nn.Flatten(), nn.Linear(input_shape[0], width), nn.ReLU(),
                         nn.Dropout(dropout), nn.Linear(width, num_outputs))
'''


def sweep_in(folder: Path, *args: str, env: dict | None = None,
             timeout: float = 300) -> subprocess.CompletedProcess:
    """The console script run in the user's project folder, as the user runs it."""
    return subprocess.run([SWEEP, *args], cwd=folder, capture_output=True, text=True,
                          timeout=timeout, env=env)


def tables(results: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """trials.parquet and history.parquet of a sweep that finished writing them."""
    return (pd.read_parquet(results / schema.TRIALS_FILE),
            pd.read_parquet(results / schema.HISTORY_FILE))


def write_project(folder: Path, *, kind: str = "tensors", task: str = "classification",
                  code_dir: str | None = None, **spec_changes) -> Path:
    """The project in `folder`: my_data.py and my_models.py beside the spec, or in
    `code_dir` (then named by `code:`). Returns the spec's path."""
    folder.mkdir(parents=True, exist_ok=True)
    modules = folder / code_dir if code_dir else folder
    modules.mkdir(parents=True, exist_ok=True)
    (modules / "my_data.py").write_text(textwrap.dedent(DATA))
    (modules / "my_models.py").write_text(textwrap.dedent(MODELS))
    spec = {
        "name": f"user-{kind}-{task}",
        "num_samples": 2,
        "seed": 1,
        "train": {
            "task": task,
            "dataset": {"factory": "my_data:load", "kind": kind, "task": task},
            "model": {"factory": "my_models:build", "width": 16},
            "epochs": 3,
            "batch_size": 32,
            "optimizer": {"name": "adam", "lr": 0.01},
        },
        "search_space": {"model.width": {"choice": [8, 16]}},
        "scheduler": {"name": "fifo"},
    }
    if code_dir:
        spec["code"] = [code_dir]
    spec.update(spec_changes)
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


LOOP = '''
"""The user's own training loop (no Ray in sight)."""
import os
import time

import torch
from torch import nn
from torch.nn import functional as F


def train(config, trial):
    torch.manual_seed(trial.seed)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(config["rows"], 8, generator=g)
    y = (x[:, 0] + x[:, 1] > 0).long()
    x_val, y_val = x[: config["rows"] // 5], y[: config["rows"] // 5]
    model = nn.Sequential(nn.Linear(8, config["hidden"]), nn.ReLU(),
                          nn.Linear(config["hidden"], 2))
    opt = torch.optim.SGD(model.parameters(), lr=config["lr"], momentum=0.9)
    if config.get("watch"):  # the training's own signals in the history
        trial.watch(model, opt)
    start = 0
    state = trial.restore()
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        torch.set_rng_state(state["rng"])
        start = state["epoch"]
    for epoch in range(start + 1, config["epochs"] + 1):
        if epoch > 2 and os.path.exists(config.get("stall_while", "")):
            time.sleep(60)  # a test's long epoch: the file is there while it must last
        total = 0.0
        for idx in torch.randperm(len(x)).split(32):
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        with torch.no_grad():
            logits = model(x_val)
        trial.report(epoch=epoch, train_loss=total / len(x),
                     val_loss=F.cross_entropy(logits, y_val).item(),
                     val_acc=(logits.argmax(1) == y_val).float().mean().item(),
                     grad_steps=epoch * ((len(x) + 31) // 32),
                     checkpoint={"epoch": epoch, "model": model.state_dict(),
                                 "opt": opt.state_dict(), "rng": torch.get_rng_state()})
'''


def write_loop_project(folder: Path, **spec_changes) -> Path:
    """A project whose trials run the user's own loop (my_loop.py beside the spec)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "my_loop.py").write_text(textwrap.dedent(LOOP))
    spec = {
        "name": "user-loop",
        "metric": "val_acc",
        "num_samples": 4,
        "seed": 2,
        "train": {"function": "my_loop:train", "epochs": 4, "lr": 0.05, "hidden": 16,
                  "rows": 400},
        "search_space": {"lr": {"loguniform": [0.01, 0.2]}, "hidden": {"choice": [8, 32]}},
        "scheduler": {"name": "fifo"},
    }
    spec.update(spec_changes)
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


INSPECTING_LOOP = '''
"""A loop that looks at the folder it was imported from (the copy shipped to its trial)
and writes down what it finds there, then reports a few epochs."""
import json
import os
from pathlib import Path


def train(config, trial):
    here = Path(__file__).resolve().parent
    seen = {}
    texts = []
    for current, dirs, files in os.walk(here):
        dirs[:] = [d for d in dirs if d != "__pycache__"]  # this trial's own, not shipped
        for name in dirs + files:
            path = Path(current) / name
            kind = ("link" if path.is_symlink() else "dir" if path.is_dir() else
                    "file" if path.is_file() else "special")
            seen[path.relative_to(here).as_posix()] = kind
            if kind == "file":
                texts.append(path.read_text(errors="replace"))
    report = {"folder": str(here), "seen": seen, "text": "".join(texts)}
    Path(config["report_dir"], f"{os.getpid()}.json").write_text(json.dumps(report))
    for epoch in range(1, config["epochs"] + 1):
        trial.report(epoch=epoch, train_loss=1.0 / epoch, val_loss=1.0 / epoch, val_acc=0.5)
'''

# what a careless project folder holds besides its code, and what of it is a secret
SECRETS = {
    ".env": "API_TOKEN=SECRET-DOTENV",
    ".env.local": "API_TOKEN=SECRET-DOTENV-LOCAL",
    ".ssh/id_ed25519": "SECRET-SSH-KEY",
    ".aws/credentials": "[default]\naws_secret_access_key = SECRET-AWS",
    ".netrc": "machine h login u password SECRET-NETRC",
    "server.pem": "SECRET-PEM",
    "id_rsa": "SECRET-ID-RSA",
    "deploy_key": "-----BEGIN OPENSSH PRIVATE KEY-----\nSECRET-PEM-BY-CONTENT\n",
    ".git/config": "[remote]\nurl = https://u:SECRET-GIT@example.org/r",
    "notes-private.txt": "SECRET-GITIGNORED",
    "data/raw.csv": "SECRET-GITIGNORED-FOLDER",
    "pkg/.gitignore": "local_settings.py\n",
    "pkg/local_settings.py": "TOKEN = 'SECRET-NESTED-GITIGNORE'",
    "scratch/big.bin": "SECRET-CODE-EXCLUDE",
    "env-3.11/pyvenv.cfg": "home = /usr/bin  # SECRET-VENV",
}
# the project's own code: what must ship
CODE = {
    "pkg/__init__.py": "",
    "pkg/util.py": "VALUE = 1\n",
    "id_tools.py": "def tool():\n    return 1\n",  # a module named id_*: still code
}


def write_secret_project(folder: Path, outside: Path, name: str = "shipping") -> Path:
    """A loop project whose folder holds secrets and junk beside its code: dotfiles,
    keys, a .gitignore'd file and folder (and a nested .gitignore), a file left out by
    `code_exclude`, a virtual environment, a symlink to a file and one to a folder
    outside the project, a symlink that stays inside, and a named pipe. Returns the
    spec's path; `outside` gets the files the links point at."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "my_loop.py").write_text(textwrap.dedent(INSPECTING_LOOP))
    for relative, text in {**SECRETS, **CODE}.items():
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).write_text(text)
    (folder / ".gitignore").write_text("notes-private.txt\ndata/\n")
    outside.mkdir(parents=True, exist_ok=True)
    (outside / "secret.txt").write_text("SECRET-OUTSIDE-FILE")
    (outside / "dir").mkdir(exist_ok=True)
    (outside / "dir" / "inner.py").write_text("TOKEN = 'SECRET-OUTSIDE-DIR'")
    (folder / "shared.txt").symlink_to(outside / "secret.txt")
    (folder / "linked_dir").symlink_to(outside / "dir")
    (folder / "util_link.py").symlink_to(folder / "pkg" / "util.py")  # inside: it ships
    os.mkfifo(folder / "pipe")
    spec = {
        "name": name, "metric": "val_loss", "mode": "min", "num_samples": 1,
        "train": {"function": "my_loop:train", "epochs": 1,
                  "report_dir": str(outside / "reports")},
        "scheduler": {"name": "fifo"},
        "code_exclude": ["scratch/"],
    }
    (outside / "reports").mkdir(exist_ok=True)
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


# what of write_secret_project ships, exactly (the .gitignore files are read, not shipped)
SHIPPED = {"id_tools.py", "my_loop.py", "pkg/__init__.py", "pkg/util.py", "spec.yaml",
           "util_link.py"}
