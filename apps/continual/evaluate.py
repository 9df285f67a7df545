"""Metrics as the official CURL code logs them, plus the per-task view that shows forgetting.

* cluster accuracy (the official "purity"): each component is mapped to the majority label of the
  test samples it wins (argmax q(y|x)); accuracy = share of samples whose component maps to their label;
* k-NN error on the latent mean (official ``knn_values``; ``classify_with_samples=False``: the mean
  of q(z|x, y=argmax)); the classifier is fitted on a labelled reference set (official: the training set);
* test ELBO: mean per-sample bound (nats; the official code logs its negative as the loss);
* components: active mixture components;
* per-task accuracy: the cluster accuracy restricted to the test samples of each task's classes.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .data import ImageSet
from .model import CurlModel, binarize


@torch.no_grad()
def encode(model: CurlModel, images: torch.Tensor, batch: int = 1000, seed: int = 0) -> dict[str, np.ndarray]:
    """q(y|x) (N, K), latent means (N, n_z) and per-sample ELBO (N,) of flattened images in [0, 1].

    The ELBO's z draws use a fixed seed inside a forked RNG, so evaluating never moves the training RNG.
    """
    device = next(model.parameters()).device
    probs, latents, ll = [], [], []
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        for start in range(0, len(images), batch):
            x = binarize(images[start:start + batch].to(device))
            p, z = model.latent_mean(x)
            probs.append(p.cpu())
            latents.append(z.cpu())
            ll.append(model.elbo_terms(x)["ll"].cpu())
    return {"probs": torch.cat(probs).numpy(), "latents": torch.cat(latents).numpy(), "ll": torch.cat(ll).numpy()}


def cluster_mapping(assign: np.ndarray, labels: np.ndarray) -> dict[int, int]:
    """Component -> majority label among the samples it wins (ties: the smallest label)."""
    mapping = {}
    for component in np.unique(assign):
        values, counts = np.unique(labels[assign == component], return_counts=True)
        mapping[int(component)] = int(values[np.argmax(counts)])
    return mapping


def cluster_accuracy(assign: np.ndarray, labels: np.ndarray) -> float:
    """Official purity: sum over components of their majority-label count, over N."""
    mapping = cluster_mapping(assign, labels)
    predicted = np.array([mapping[int(a)] for a in assign])
    return float(np.mean(predicted == labels))


def task_accuracies(assign: np.ndarray, labels: np.ndarray, tasks: list[list[int]]) -> list[float]:
    """Cluster accuracy (global majority mapping) on the test samples of each task's classes."""
    mapping = cluster_mapping(assign, labels)
    predicted = np.array([mapping[int(a)] for a in assign])
    out = []
    for task in tasks:
        mask = np.isin(labels, task)
        out.append(float(np.mean(predicted[mask] == labels[mask])) if mask.any() else float("nan"))
    return out


def knn_error(train_latents: np.ndarray, train_labels: np.ndarray, test_latents: np.ndarray,
              test_labels: np.ndarray, k: int) -> float:
    """1 − accuracy of scikit-learn's ``KNeighborsClassifier(n_neighbors=k)`` (the official classifier)."""
    from sklearn.neighbors import KNeighborsClassifier

    k = min(k, len(train_latents))
    classifier = KNeighborsClassifier(n_neighbors=k).fit(train_latents, train_labels)
    return float(1.0 - classifier.score(test_latents, test_labels))


def evaluate_model(model: CurlModel, test: ImageSet, reference: ImageSet, tasks: list[list[int]],
                   knn_k: int = 10) -> dict[str, Any]:
    """All stream metrics of ``model`` on ``test`` (k-NN fitted on ``reference``)."""
    labels = np.asarray(test.labels)
    encoded = encode(model, test.flat())
    assign = encoded["probs"].argmax(1)
    ref = encode(model, reference.flat())
    return {
        "cluster_accuracy": cluster_accuracy(assign, labels),
        "knn_error": knn_error(ref["latents"], np.asarray(reference.labels), encoded["latents"], labels, knn_k),
        "elbo": float(encoded["ll"].mean()),
        "components": int(model.active),
        "task_accuracy": task_accuracies(assign, labels, tasks),
        "test_samples": int(len(labels)),
    }


def plot_stream(history: dict[str, Any], path: Path) -> None:
    """PNG: accuracy on each task's test data (one line per task) after each task of the stream."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    acc = np.asarray(history["task_accuracy"], dtype=float)  # (evaluations, tasks)
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    x = np.arange(1, acc.shape[0] + 1)
    for j in range(acc.shape[1]):
        ax.plot(x, acc[:, j], marker="o", ms=3, label=f"task {j}")
    ax.plot(x, history["cluster_accuracy"], color="black", lw=2, ls="--", label="all test data")
    ax.set_xlabel("after task")
    ax.set_ylabel("cluster accuracy")
    ax.set_ylim(0, 1)
    ax.set_title("accuracy per task over the stream")
    ax.legend(fontsize=6, ncol=2, loc="lower left")
    fig.tight_layout()
    from shared.guard import atomic_output

    with atomic_output(path) as tmp:
        fig.savefig(tmp)
    plt.close(fig)


def write_json(result: dict[str, Any], path: Path) -> None:
    from shared.guard import write_atomic

    write_atomic(path, json.dumps(result, indent=2) + "\n")
