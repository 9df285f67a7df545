"""The shipped embeddings load, match the manifest, and separate two look-alike tracks better than chance."""
from __future__ import annotations

import numpy as np
import pytest

from apps.mot.data import MOTSequence, list_sequences
from apps.mot.model import Embedder
from apps.mot.train import match_to_gt
from shared.weights import shipped_weight


@pytest.mark.parametrize("name", ["mot_embed_full", "mot_embed_unlabelled"])
def test_shipped_embedding(name, tiny_root):
    embedder = Embedder.from_file(shipped_weight(name))  # verifies sha256 against weights/MANIFEST.json
    seq = MOTSequence.open(list_sequences(tiny_root)[0])
    det, ids = seq.det(), match_to_gt(seq)
    embs, labels = [], []
    for frame, rows in det.frame_rows().items():
        rows = rows[ids[rows] >= 0]
        if len(rows):
            embs.append(embedder(seq.read_frame(frame), det.boxes[rows]))
            labels.append(ids[rows])
    e, y = np.concatenate(embs), np.concatenate(labels)
    sim = e @ e.T
    same = (y[:, None] == y[None]) & ~np.eye(len(y), dtype=bool)
    diff = y[:, None] != y[None]
    # unseen sequence (seed 11): detections of one object are closer to each other than to others
    assert sim[same].mean() > sim[diff].mean() + 0.2
