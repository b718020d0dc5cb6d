"""scikit-learn's 8x8 digits as a torch Dataset of (image, label) pairs: the data
factory of this example (a Dataset is served to the trial by a DataLoader)."""

import numpy as np
import torch
from sklearn.datasets import load_digits
from torch.utils.data import Dataset


class DigitImages(Dataset):
    classes = [str(d) for d in range(10)]  # torchvision's convention: the class count

    def __init__(self, images: np.ndarray, labels: np.ndarray, shift: int = 0):
        self.images = torch.tensor(images, dtype=torch.float32).unsqueeze(1) / 16.0
        self.labels = torch.tensor(labels, dtype=torch.long)
        self.shift = shift

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        image = self.images[i]
        if self.shift:  # a fixed, per-example shift: augmentation that stays reproducible
            image = torch.roll(image, shifts=(i % (2 * self.shift + 1)) - self.shift, dims=2)
        return image, self.labels[i]


def load(seed: int, shift: int = 0, val_fraction: float = 0.2):
    digits = load_digits()
    order = np.random.default_rng(seed).permutation(len(digits.images))
    n_val = int(len(order) * val_fraction)
    val, train = order[:n_val], order[n_val:]
    return (DigitImages(digits.images[train], digits.target[train], shift),
            DigitImages(digits.images[val], digits.target[val]))
