"""Trials of several workers, without Ray: the spec's `resources` (one line, exit 2, for
what cannot run), the plan, and each rank's shard of the data."""

from __future__ import annotations

import pytest
import torch

from orchestrator.trainable.data import TensorData
from orchestrator.trainable.ddp import RankBatches, RankShard, global_rows
from tests.helpers import invoke, tiny_spec, write_spec


def one_line_error(tmp_path, *sets: str) -> str:
    path = write_spec(tmp_path, tiny_spec(tmp_path))
    args = [a for s in sets for a in ("--set", s)]
    result = invoke("validate", str(path), *args)
    assert result.exit_code == 2, result.stdout
    assert result.stdout == "" and result.stderr.count("\n") == 1
    return result.stderr


@pytest.mark.parametrize(("sets", "expected"), [
    (["resources={workers: 0}"], "resources.workers: is 0, but must be >= 1"),
    (["resources={workers: 2, placement: scatter}"], "resources.placement: is 'scatter'"),
    (["resources={workers: 3}", "search_space={}"],
     "train.batch_size: is 32, but must be a multiple of resources.workers (3)"),
    (["resources={workers: 4}"],  # tiny_spec searches batch_size in [16, 32]
     None),
    (["resources={workers: 2}", "search_space={batch_size: {choice: [16, 33]}}"],
     "search_space.batch_size: holds 33, but each batch must be a multiple of "
     "resources.workers (2)"),
    (["resources={workers: 2}", "search_space={batch_size: {randint: [16, 64]}}"],
     "search_space.batch_size: is randint, but with resources.workers 2 must be a choice"),
    (["resources={workers: 2, gpu: 0.5}"],
     "resources.gpu: is 0.5, but with resources.workers 2 must be 0 or a whole number"),
])
def test_resources_that_cannot_run_are_one_line_and_exit_2(tmp_path, sets, expected):
    error = one_line_error(tmp_path, *sets) if expected else None
    if expected:
        assert error.startswith("error: --set: " + expected) or expected in error, error
        return
    # workers 4 divides both 16 and 32: valid
    path = write_spec(tmp_path, tiny_spec(tmp_path))
    assert invoke("validate", str(path), "--set", sets[0]).exit_code == 0


def test_one_worker_is_the_default_and_plans_as_before(tmp_path):
    path = write_spec(tmp_path, tiny_spec(tmp_path))
    shown = invoke("validate", str(path)).stdout
    assert "  per trial   1 CPU, 0 GPU, up to 3 epochs\n" in shown
    assert "workers" not in shown


def test_the_plan_shows_workers_per_trial_and_how_many_trials_fit(tmp_path, monkeypatch):
    import orchestrator.cli.capacity as capacity

    monkeypatch.setattr(capacity, "this_machine", lambda: {"CPU": 8.0, "GPU": 0.0})
    path = write_spec(tmp_path, tiny_spec(tmp_path, num_samples=8))
    shown = invoke("validate", str(path), "--set",
                   "resources={workers: 2, cpu: 1.5, placement: spread}").stdout
    assert "  per trial   2 workers (DDP) x 1.5 CPU, 0 GPU each, placement spread" in shown
    # 8 CPUs hold 5 workers of 1.5 CPU: two groups of two
    assert "  concurrency 2 at once on this machine's embedded Ray (8 CPUs, 0 GPUs, " \
           "4 workers)" in shown
    shown = invoke("validate", str(path), "--set", "resources={workers: 16}").stdout
    assert "none at once" in shown and "16 workers" in shown


def tensors(n_train: int = 11, n_val: int = 5) -> TensorData:
    x = torch.arange(n_train, dtype=torch.float32).reshape(-1, 1)
    xv = torch.arange(100, 100 + n_val, dtype=torch.float32).reshape(-1, 1)
    return TensorData(x, torch.arange(n_train), xv, torch.arange(n_val), num_outputs=2)


def test_ranks_share_out_the_one_worker_batches_from_the_same_generator():
    data, batch = tensors(), 4
    one = [xb.flatten().tolist() for xb, _ in
           data.train_batches(batch, torch.Generator().manual_seed(7))]
    shards = [RankShard(data, rank, 2) for rank in range(2)]
    ranks = [[(xb.flatten().tolist(), shard.rows) for xb, _ in
              shard.train_batches(batch, torch.Generator().manual_seed(7))]
             for shard in shards]
    assert len(ranks[0]) == len(ranks[1]) == len(one) == 3  # every rank steps together
    for b, whole in enumerate(one):
        (mine, rows0), (theirs, rows1) = ranks[0][b], ranks[1][b]
        assert rows0 == rows1 == len(whole) == global_rows(11, batch, b)
        assert mine == whole[0::2] and theirs == whole[1::2]
    # the validation split: each row on exactly one rank
    val = sorted(x for shard in shards for xb, _ in shard.val_batches(2)
                 for x in xb.flatten().tolist())
    assert val == data.x_val.flatten().tolist()


def test_a_dataset_is_shared_out_the_same_way():
    sampler = [RankBatches(11, 4, rank, 2, torch.Generator().manual_seed(7))
               for rank in range(2)]
    order = torch.randperm(11, generator=torch.Generator().manual_seed(7))
    whole = [chunk.tolist() for chunk in order.split(4)]
    got = [list(s) for s in sampler]
    assert [a + b for a, b in zip(*got)] != whole  # interleaved, not halves
    assert [sorted(a + b) for a, b in zip(*got)] == [sorted(w) for w in whole]
    assert got[0] == [w[0::2] for w in whole] and len(sampler[0]) == 3
