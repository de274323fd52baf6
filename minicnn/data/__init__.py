"""Datasets and batching: IDX files, MNIST-like datasets (local folder or download), scikit-learn's
digits at 28x28 (always available offline), and a seeded ``DataLoader``.

Not imported by ``import minicnn``; use ``from minicnn.data import load_mnist, DataLoader``.
"""
from .datasets import (DATASETS, DIGITS_MEAN, DIGITS_STD, FASHION_MNIST, KMNIST, MNIST, SPLIT_FILES,
                       DatasetNotFoundError, IdxDataset, default_root, download_files, load_digits,
                       load_fashion_mnist, load_idx_dataset, load_kmnist, load_mnist, upscale_digits)
from .idx import read_idx, read_idx_images, read_idx_labels, write_idx
from .loader import DataLoader
