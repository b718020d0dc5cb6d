"""A hand-written PyTorch loop, run by the sweep as each trial: it reads its settings
from `config`, reports one row per epoch, and continues from its own checkpoint."""

import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.nn import functional as F


def data(seed: int):
    digits = load_digits()
    x = torch.tensor(digits.data, dtype=torch.float32) / 16.0
    y = torch.tensor(digits.target)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    val, train = order[:360], order[360:]
    return (x[train], y[train]), (x[val], y[val])


def train(config: dict, trial) -> None:
    torch.manual_seed(trial.seed)
    (x, y), (x_val, y_val) = data(seed=0)  # the same split for every trial
    model = nn.Sequential(nn.Linear(64, config["hidden"]), nn.ReLU(),
                          nn.Linear(config["hidden"], 10)).to(trial.device)
    opt = torch.optim.SGD(model.parameters(), lr=config["lr"], momentum=0.9)
    start = 0
    state = trial.restore()  # None, or what the last report passed as checkpoint=
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        start = state["epoch"]
    for epoch in range(start + 1, config["epochs"] + 1):
        model.train()
        total = 0.0
        for idx in torch.randperm(len(x)).split(config["batch_size"]):
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        model.eval()
        with torch.no_grad():
            logits = model(x_val)
        trial.report(epoch=epoch, train_loss=total / len(x),
                     val_loss=F.cross_entropy(logits, y_val).item(),
                     val_acc=(logits.argmax(1) == y_val).float().mean().item(),
                     checkpoint={"epoch": epoch, "model": model.state_dict(),
                                 "optimizer": opt.state_dict()})
