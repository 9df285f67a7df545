"""Instance-to-track contrastive loss (Semi-TCL): each detection against the tracker's track prototypes."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._checks import LossInputError, check_2d, check_labels, check_positive, compute_dtype, full_precision


class InstanceToTrackLoss(nn.Module):
    """InfoNCE over tracks: row i's positive is track ``det_track[i]``, the other tracks are negatives.

    ``det_track[i] == -1`` marks an unlabelled detection; it is excluded unless ``pseudo_track[i]``
    (the tracker's confident association, also -1 = none) names a track. Ground truth wins over
    pseudo-labels. Embeddings are L2-normalised. When no row is usable the loss is a 0-valued scalar
    that is still connected to the inputs (so ``backward()`` works).

    Example::

        loss = InstanceToTrackLoss(0.1)(det_emb, track_emb, det_track, pseudo_track)
    """

    def __init__(self, temperature: float = 0.1) -> None:
        super().__init__()
        check_positive("InstanceToTrackLoss", "temperature", temperature)
        self.temperature = float(temperature)

    @full_precision
    def forward(self, det_emb: torch.Tensor, track_emb: torch.Tensor, det_track: torch.Tensor,
                pseudo_track: torch.Tensor | None = None) -> torch.Tensor:
        name = "InstanceToTrackLoss"
        check_2d("det_emb", name, det_emb)
        n, d = det_emb.shape
        check_2d("track_emb", name, track_emb, dim=d)
        t = track_emb.shape[0]
        check_labels(name, "det_track", det_track, n)
        target = det_track.to(device=det_emb.device, dtype=torch.long)
        if pseudo_track is not None:
            check_labels(name, "pseudo_track", pseudo_track, n)
            target = torch.where(target >= 0, target, pseudo_track.to(device=det_emb.device, dtype=torch.long))
        if bool(((target < -1) | (target >= t)).any()):
            raise LossInputError(f"{name}: track ids must be -1 (unlabelled) or in [0, {t}), "
                                 f"got values in [{int(target.min())}, {int(target.max())}]")
        dtype = compute_dtype(det_emb)
        logits = torch.mm(F.normalize(det_emb.to(dtype), dim=1),
                          F.normalize(track_emb.to(dtype), dim=1).t()) / self.temperature
        usable = target >= 0
        if not bool(usable.any()):
            return logits.sum() * 0.0
        return F.cross_entropy(logits[usable], target[usable])

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}"
