"""ProcrustesMPJPE / procrustes_align against an independent reference: scipy's orthogonal_procrustes
with the FreiHAND normalisation, one sample at a time in numpy."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.linalg import orthogonal_procrustes

from shared.losses import LossInputError, ProcrustesMPJPE, procrustes_align


def reference_align(gt: np.ndarray, pred: np.ndarray) -> np.ndarray:
    gt_c, pred_c = gt - gt.mean(0), pred - pred.mean(0)
    s_gt, s_pred = np.linalg.norm(gt_c) + 1e-8, np.linalg.norm(pred_c) + 1e-8
    R, s = orthogonal_procrustes(gt_c / s_gt, pred_c / s_pred)
    return (pred_c / s_pred) @ R.T * s * s_gt + gt.mean(0)


def test_matches_scipy_on_random_and_transformed_poses():
    rng = np.random.default_rng(0)
    gt = rng.normal(size=(6, 21, 3))
    pred = gt + 0.3 * rng.normal(size=gt.shape)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    pred[0] = 2.5 * gt[0] @ q.T + np.array([1.0, -2.0, 0.5])     # an exact similarity transform (maybe a reflection)
    ours = procrustes_align(torch.from_numpy(pred), torch.from_numpy(gt)).double().numpy()
    ref = np.stack([reference_align(g, p) for g, p in zip(gt, pred)])
    assert np.allclose(ours, ref, atol=1e-5)
    assert np.allclose(ours[0], gt[0], atol=1e-5)
    loss = ProcrustesMPJPE()(torch.from_numpy(pred).float(), torch.from_numpy(gt).float())
    expected = np.mean([np.linalg.norm(r - g, axis=-1).mean() for r, g in zip(ref, gt)])
    assert float(loss) == pytest.approx(expected, rel=1e-4)
    w = torch.tensor([0.0, 1, 1, 1, 1, 3])
    weighted = ProcrustesMPJPE()(torch.from_numpy(pred).float(), torch.from_numpy(gt).float(), w)
    per = np.array([np.linalg.norm(r - g, axis=-1).mean() for r, g in zip(ref, gt)])
    assert float(weighted) == pytest.approx((per * w.numpy()).sum() / w.numpy().sum(), rel=1e-4)


def test_gradient_flows_and_ignores_similarity_transforms():
    torch.manual_seed(0)
    gt = torch.randn(4, 21, 3)
    pred = (gt + 0.2 * torch.randn_like(gt)).requires_grad_()
    ProcrustesMPJPE()(pred, gt).backward()
    assert torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0
    moved = 3.0 * pred.detach() + torch.tensor([0.5, 0.0, -1.0])
    assert torch.allclose(ProcrustesMPJPE()(moved, gt), ProcrustesMPJPE()(pred.detach(), gt), atol=1e-5)


def test_bad_shapes_are_one_clear_error():
    with pytest.raises(LossInputError, match="procrustes_align"):
        ProcrustesMPJPE()(torch.zeros(2, 21, 3), torch.zeros(2, 20, 3))
    with pytest.raises(LossInputError, match="floating"):
        ProcrustesMPJPE()(torch.zeros(2, 21, 3, dtype=torch.long), torch.zeros(2, 21, 3))
