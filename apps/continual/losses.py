"""The CURL objectives on top of :class:`shared.losses.MixtureELBO` (the general mixture ELBO lives in shared).

* unsupervised: ``−mean ELBO`` with ``y`` marginalised over the active components;
* supervised (incremental-class benchmark, expansion buffer training, SMGR-style labelled batches):
  ``−mean [log p(x|z_y, y) + log q(y|x) − KL(q(z|x,y) ‖ p(z|y))]``.
"""
from __future__ import annotations

import torch


def unsupervised_loss(terms: dict[str, torch.Tensor]) -> torch.Tensor:
    """``terms`` from :meth:`CurlModel.elbo_terms`."""
    return -terms["ll"].mean()


def supervised_loss(elbo, terms: dict[str, torch.Tensor], y: torch.Tensor) -> torch.Tensor:
    """``elbo``: the model's MixtureELBO; ``y``: component index per sample."""
    return -elbo.supervised(terms["qy_logits"], terms["log_px_all"], terms["kl_z_all"], y)["ll"].mean()
