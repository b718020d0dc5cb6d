"""A hand-written PyTorch loop that trains data-parallel: `trial.prepare` wraps the
model in DDP and `trial.shard` gives this worker its rows (both Ray Train's helpers);
with `workers: 1` the same loop runs as one process (rank 0 of 1)."""

import torch
import torch.distributed as dist
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


def summed(*values: float) -> list[float]:
    """The sums over the workers (the values themselves with one)."""
    tensor = torch.tensor(values, dtype=torch.float64)
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(tensor)
    return tensor.tolist()


def train(config: dict, trial) -> None:
    torch.manual_seed(trial.seed)  # every worker builds the same model
    (x, y), (x_val, y_val) = data(seed=0)
    model = trial.prepare(nn.Sequential(nn.Linear(64, config["hidden"]), nn.ReLU(),
                                        nn.Linear(config["hidden"], 10)))
    inner = getattr(model, "module", model)  # DDP's wrapped model: what checkpoints hold
    opt = torch.optim.SGD(model.parameters(), lr=config["lr"], momentum=0.9)
    per_worker = config["batch_size"] // trial.world_size
    shuffle = torch.Generator().manual_seed(trial.seed)  # the same order on every worker
    start = 0
    state = trial.restore()  # every worker loads the checkpoint rank 0 wrote
    if state is not None:
        inner.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        shuffle.set_state(state["shuffle"])
        start = state["epoch"]
    for epoch in range(start + 1, config["epochs"] + 1):
        model.train()
        order = torch.randperm(len(x), generator=shuffle)
        order = order[: len(order) - len(order) % trial.world_size]  # equal shards
        loss_sum = rows = 0.0
        for idx in trial.shard(order).split(per_worker):
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()  # DDP averages the gradients over the workers
            opt.step()
            loss_sum, rows = loss_sum + loss.item() * len(idx), rows + len(idx)
        model.eval()
        with torch.no_grad():  # each worker its shard of the validation split, summed
            logits, target = inner(trial.shard(x_val)), trial.shard(y_val)
            val = summed(loss_sum, rows, F.cross_entropy(logits, target, reduction="sum"),
                         (logits.argmax(1) == target).sum(), len(target))
        trial.report(epoch=epoch, train_loss=val[0] / val[1], val_loss=val[2] / val[4],
                     val_acc=val[3] / val[4],
                     checkpoint={"epoch": epoch, "model": inner.state_dict(),
                                 "optimizer": opt.state_dict(),
                                 "shuffle": shuffle.get_state()})
