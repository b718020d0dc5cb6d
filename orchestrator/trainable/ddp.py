"""The shared trainer on one rank of a data-parallel worker group (resources.workers >= 2).

Every rank holds the whole data set and draws the same permutation from the trial's
seeded generator, so the global batches are those of a one-worker trial at the same
`batch_size`; rank r trains on rows r, r + world, ... of each (`RankShard`). Gradients
are averaged by DDP (Ray Train's `prepare_model`); each rank's loss is weighted by its
share of the global batch so that the average is the global batch's mean gradient even
when the last batch does not split evenly. Validation is sharded the same way and its
sums are all-reduced: the metrics are those of the whole validation set. Every rank ends
an epoch with the same numbers, so every rank stops at the same epoch.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Sampler, Subset

from orchestrator.spec.settings import TrialConfig
from orchestrator.trainable.data import TensorData
from orchestrator.trainable.losses import Evaluation, Prior
from orchestrator.trainable.trainer import Trainer
from orchestrator.trainable.user_data import INITIAL_EXAMPLES, LoaderData


class RankBatches(Sampler[list[int]]):
    """A Dataset's batches on one rank: the one-worker trial's global batches (one
    permutation per epoch from `generator`), of which this rank takes every world-th row."""

    def __init__(self, size: int, batch_size: int, rank: int, world: int,
                 generator: torch.Generator):
        self.size, self.batch_size, self.generator = size, batch_size, generator
        self.rank, self.world = rank, world
        self.batches: list[list[int]] = []  # this epoch's, this rank's rows

    def __len__(self) -> int:
        return -(-self.size // self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        order = torch.randperm(self.size, generator=self.generator)
        self.batches = [chunk[self.rank::self.world].tolist()
                        for chunk in order.split(self.batch_size)]
        yield from self.batches


def global_rows(size: int, batch_size: int, index: int) -> int:
    """Rows of global batch `index` of an epoch of `size` rows."""
    return min(batch_size, size - index * batch_size)


class RankShard:
    """The trial's data as one rank sees it: the global batches' rows of this rank, and
    its stride of the validation split; everything else is the data's own."""

    def __init__(self, data: TensorData | LoaderData, rank: int, world: int):
        self.data, self.rank, self.world = data, rank, world
        self.rows = 0  # the global batch's rows of the batch last handed out
        self._sampler: RankBatches | None = None
        self._loader: DataLoader | None = None

    def __getattr__(self, name: str):
        return getattr(self.data, name)

    def train_batches(self, batch_size: int, generator: torch.Generator) -> Iterator:
        n = self.data.n_train
        if isinstance(self.data, TensorData):
            x, y = self.data.x_train, self.data.y_train
            order = torch.randperm(n, generator=generator).to(x.device)
            for idx in order.split(batch_size):
                self.rows = len(idx)
                mine = idx[self.rank::self.world]
                yield x[mine], y[mine]
            return
        if self._loader is None or self._sampler.batch_size != batch_size:
            data = self.data
            self._sampler = RankBatches(n, batch_size, self.rank, self.world, generator)
            self._loader = DataLoader(
                data.train, batch_sampler=self._sampler, num_workers=data.workers,
                pin_memory=data.device.type == "cuda", persistent_workers=data.workers > 0,
                generator=torch.Generator().manual_seed(data.seed))
        sampler = self._sampler
        for b, batch in enumerate(self.data._on_device(self._loader, "train",
                                                       lambda b, _: sampler.batches[b])):
            self.rows = global_rows(n, batch_size, b)
            yield batch

    def _val_stride(self, dataset, limit: int | None = None) -> Subset:
        end = len(dataset) if limit is None else min(limit, len(dataset))
        return Subset(dataset, range(self.rank, end, self.world))

    def val_batches(self, batch_size: int) -> Iterator:
        if isinstance(self.data, TensorData):
            x, y = self.data.x_val[self.rank::self.world], self.data.y_val[self.rank::self.world]
            for start in range(0, len(x), batch_size):
                yield x[start:start + batch_size], y[start:start + batch_size]
            return
        yield from self._strided(self._val_stride(self.data.val), batch_size)

    def initial_batches(self, batch_size: int) -> Iterator:
        if isinstance(self.data, TensorData):
            return self.val_batches(batch_size)
        return self._strided(self._val_stride(self.data.val, INITIAL_EXAMPLES), batch_size)

    def _strided(self, subset: Subset, batch_size: int) -> Iterator:
        rows = subset.indices
        return self.data._on_device(
            self.data._loader(subset, batch_size, None), "val",
            lambda b, n: rows[b * batch_size:b * batch_size + n])


def all_reduced(values: list[torch.Tensor | float], device: torch.device) -> list[float]:
    """The sums over the group's ranks of `values` (float64: counts stay exact)."""
    stacked = torch.stack([torch.as_tensor(v, dtype=torch.float64).to(device).reshape(())
                           for v in values])
    dist.all_reduce(stacked)
    return stacked.tolist()


class GroupTrainer(Trainer):
    """`Trainer` on one rank of a worker group: the model wrapped in DDP by Ray Train's
    `prepare_model` for training, the inner model for evaluation and checkpoints (the
    same state dict as a one-worker trial's: its checkpoints load in either)."""

    def __init__(self, config: TrialConfig, trial_index: int, device: str, threads: int,
                 rank: int, world: int, wrap: Callable | None = None):
        super().__init__(config, trial_index, device, threads)
        self.rank, self.world = rank, world
        self.data = RankShard(self.data, rank, world)
        if wrap is None:  # Ray Train's; a process group of torch's own in the unit tests
            from ray.train.torch import prepare_model

            wrap = functools.partial(prepare_model, move_to_device=False)
        # DDP broadcasts rank 0's weights: every rank built the same ones from the seed
        self.ddp = wrap(self.model)

    def _forward_train(self, xb: torch.Tensor) -> torch.Tensor:
        return self.ddp(xb)

    def _backward(self, loss: torch.Tensor, rows: int) -> None:
        # DDP averages the ranks' gradients; weighting each rank's mean loss by its share
        # of the global batch (rows * world / global rows) makes that average the global
        # batch's mean gradient, as one worker computes it, even for an uneven last batch
        if rows == 0:  # a last batch smaller than the group: this rank adds nothing
            loss = sum(p.sum() for p in self.model.parameters()) * 0.0
        else:
            loss = loss * (rows * self.world / self.data.rows)
        loss.backward()

    def _epoch_mean(self, losses: torch.Tensor, rows: torch.Tensor) -> float:
        kept = rows > 0
        total, count = all_reduced([(losses[kept] * rows[kept]).double().sum(),
                                    rows.double().sum()], self.device)
        return total / count

    def _collected(self, prior: Prior) -> Prior:
        # a Dataset's targets are counted as they are drawn: each rank saw its share
        if prior.task == "classification":
            counts = prior.counts.to(self.device)
            dist.all_reduce(counts)
            prior.counts = counts.cpu()
        else:
            total = prior.total.double().to(self.device)
            dist.all_reduce(total)
            prior.total = total.cpu()
        prior.n = int(all_reduced([float(prior.n)], self.device)[0])
        return prior

    def _reduced(self, result: Evaluation) -> Evaluation:
        names = ("loss_sum", "correct", "abs_sum", "sq_sum", "chance_loss_sum",
                 "chance_correct", "target_sq_sum")
        summed = all_reduced([getattr(result, n) for n in names]
                             + [float(result.rows), float(result.elements)], result.device)
        for name, value in zip(names, summed):
            setattr(result, name, torch.tensor(value, dtype=torch.float64,
                                               device=result.device))
        result.rows, result.elements = int(summed[-2]), int(summed[-1])
        return result

    def _train_fitting_memory(self) -> tuple[float, float]:
        # halving the batch on the rank that ran out of memory alone would split the
        # group's steps: out of memory, the trial fails with torch's error
        lr = self.lr_of_step(self.step)
        return lr, self._train_one_epoch()
