"""Frozen-feature evaluation of a pretrained backbone.

Protocol (all on the backbone's pooled output, never the projector):

* **kNN** (k = 5 and k = 200): cosine similarity on L2-normalised features; each of the k nearest
  training samples votes for its label with weight ``exp(sim / 0.07)`` (the weighted kNN of Wu et
  al. 2018 used by most SSL papers); ties go to the lowest class index.
* **linear probe**: features standardised with the training split's mean/std, multinomial logistic
  regression (scikit-learn, L-BFGS, C = 1) on all training labels, accuracy on the test split.
* **few-label probe**: the same logistic regression trained on 10 labelled samples per class drawn
  from the training split with seeds 0..4 (standardised with the whole unlabelled training split),
  mean and std of the test accuracy over the seeds.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from shared.errors import CvsuiteError

from .augment import resize, resize_batch
from .data import ImageSet

KNN_TEMPERATURE = 0.07
FEW_LABEL_SEEDS = (0, 1, 2, 3, 4)


@torch.no_grad()
def extract_features(backbone: nn.Module, images: ImageSet, size: int, mean: Sequence[float], std: Sequence[float],
                     batch_size: int = 256, device: str | torch.device = "cpu") -> np.ndarray:
    """Backbone features ``(N, D)`` of every image, resized to ``size`` and normalised (eval mode)."""
    if images.channels != len(mean):
        raise CvsuiteError(f"{images.name} has {images.channels}-channel images but the encoder expects {len(mean)}")
    backbone = backbone.to(device).eval()
    mean_t = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    chunks: list[np.ndarray] = []
    for start in range(0, len(images), batch_size):
        raw = [images.image(i) for i in range(start, min(start + batch_size, len(images)))]
        if all(img.shape == raw[0].shape for img in raw):
            batch = resize_batch(torch.stack(raw), size)
        else:
            batch = torch.stack([resize(img, size) for img in raw])
        batch = (batch - mean_t) / std_t
        chunks.append(backbone(batch.to(device)).float().cpu().numpy())
    return np.concatenate(chunks) if chunks else np.zeros((0, 0), dtype=np.float32)


def knn_predict(train_features: np.ndarray | torch.Tensor, train_labels: np.ndarray | torch.Tensor,
                test_features: np.ndarray | torch.Tensor, k: int, num_classes: int,
                temperature: float = KNN_TEMPERATURE, chunk: int = 1024) -> np.ndarray:
    """Weighted cosine kNN labels for ``test_features`` (see module docstring)."""
    train = torch.nn.functional.normalize(torch.as_tensor(train_features, dtype=torch.float32), dim=1)
    test = torch.nn.functional.normalize(torch.as_tensor(test_features, dtype=torch.float32), dim=1)
    labels = torch.as_tensor(train_labels, dtype=torch.long)
    k = min(k, len(train))
    predictions = []
    for start in range(0, len(test), chunk):
        sims = test[start:start + chunk] @ train.T
        top_sims, top_idx = sims.topk(k, dim=1)
        votes = torch.zeros(len(top_sims), num_classes)
        votes.scatter_add_(1, labels[top_idx], torch.exp(top_sims / temperature))
        predictions.append(votes.argmax(dim=1))
    return torch.cat(predictions).numpy() if predictions else np.zeros(0, dtype=np.int64)


def _standardise(fit_on: np.ndarray, *arrays: np.ndarray) -> list[np.ndarray]:
    mean = fit_on.mean(axis=0)
    std = fit_on.std(axis=0)
    std[std < 1e-8] = 1.0
    return [(a - mean) / std for a in arrays]


def linear_probe(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray,
                 scale_on: np.ndarray | None = None, c: float = 1.0) -> float:
    """Test accuracy of logistic regression on standardised features."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    train_s, test_s = _standardise(train_x if scale_on is None else scale_on, train_x, test_x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        classifier = LogisticRegression(C=c, max_iter=1000).fit(train_s, train_y)
    return float((classifier.predict(test_s) == test_y).mean())


def few_label_indices(labels: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """``per_class`` training indices of each class (fewer if a class is smaller), drawn with ``seed``."""
    rng = np.random.default_rng(seed)
    chosen = []
    for cls in np.unique(labels[labels >= 0]):
        members = np.flatnonzero(labels == cls)
        chosen.append(rng.choice(members, size=min(per_class, len(members)), replace=False))
    return np.sort(np.concatenate(chosen))


def evaluate_features(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray,
                      per_class: int = 10, seeds: Sequence[int] = FEW_LABEL_SEEDS) -> dict[str, float]:
    """kNN-5, kNN-200, linear and few-label-linear accuracies (fractions in [0, 1])."""
    labelled = train_y >= 0
    if labelled.sum() == 0 or (test_y >= 0).sum() == 0:
        raise CvsuiteError("evaluation needs labelled train and test images")
    train_x, train_y = train_x[labelled], train_y[labelled]
    num_classes = int(max(train_y.max(), test_y.max()) + 1)
    results = {f"knn{k}": float((knn_predict(train_x, train_y, test_x, k, num_classes) == test_y).mean()) for k in (5, 200)}
    results["linear"] = linear_probe(train_x, train_y, test_x, test_y)
    few = [linear_probe(train_x[idx], train_y[idx], test_x, test_y, scale_on=train_x)
           for idx in (few_label_indices(train_y, per_class, seed) for seed in seeds)]
    results[f"linear_{per_class}label"] = float(np.mean(few))
    results[f"linear_{per_class}label_std"] = float(np.std(few))
    return results


def evaluate_backbone(backbone: nn.Module, train: ImageSet, test: ImageSet, size: int, mean: Sequence[float],
                      std: Sequence[float], device: str | torch.device = "cpu") -> dict[str, float]:
    train_x = extract_features(backbone, train, size, mean, std, device=device)
    test_x = extract_features(backbone, test, size, mean, std, device=device)
    return evaluate_features(train_x, train.labels, test_x, test.labels)


def evaluate_encoder_file(weights: str | Path, data: str, baseline: bool = False, device: str = "cpu",
                          channels: int = 3) -> dict[str, Any]:
    """Load an encoder file, evaluate it on ``data``'s train/test splits (and a random-init twin)."""
    from .data import open_images
    from .model import load_encoder, random_encoder

    backbone, info = load_encoder(weights)
    train = open_images(data, "train", channels=info.in_channels if info.in_channels in (1, 3) else channels)
    test = open_images(data, "test", channels=info.in_channels if info.in_channels in (1, 3) else channels)
    result: dict[str, Any] = {"weights": str(weights), "data": data, "method": info.method,
                              "train_images": len(train), "test_images": len(test),
                              "knn": f"weighted cosine, weights exp(sim/{KNN_TEMPERATURE})"}
    result.update(evaluate_backbone(backbone, train, test, info.image_size, info.mean, info.std, device))
    if baseline:
        result["random_init"] = evaluate_backbone(random_encoder(info), train, test, info.image_size,
                                                  info.mean, info.std, device)
    return result
