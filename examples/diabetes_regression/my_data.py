"""scikit-learn's diabetes data (442 patients, 10 features, a disease-progression score)
as tensors: the data factory of this example."""

import numpy as np
import torch
from sklearn.datasets import load_diabetes


def load(seed: int, standardize: bool = True, val_fraction: float = 0.2):
    x, y = load_diabetes(return_X_y=True)
    order = np.random.default_rng(seed).permutation(len(x))
    n_val = int(len(x) * val_fraction)
    val, train = order[:n_val], order[n_val:]
    if standardize:  # features and target, with the training split's statistics
        mean, std = x[train].mean(0), x[train].std(0)
        x = (x - mean) / std
        y = (y - y[train].mean()) / y[train].std()
    as_tensor = lambda a: torch.tensor(a, dtype=torch.float32)  # noqa: E731
    return (as_tensor(x[train]), as_tensor(y[train])), (as_tensor(x[val]), as_tensor(y[val]))
