"""The mixture ELBO (shared.losses.MixtureELBO) and the model's ELBO against explicit computations."""
from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Bernoulli, Categorical, Normal, kl_divergence

from apps.continual.model import CurlModel, ModelConfig
from shared.losses import LossInputError, MixtureELBO, diag_gaussian_kl


def test_mixture_elbo_matches_loops():
    torch.manual_seed(0)
    batch, k = 5, 3
    logits, log_px, kl_z = torch.randn(batch, k), -torch.rand(k, batch) * 50, torch.rand(k, batch) * 5
    terms = MixtureELBO()(logits, log_px, kl_z)
    for b in range(batch):
        q = [math.exp(logits[b, j]) / sum(math.exp(logits[b, i]) for i in range(k)) for j in range(k)]
        kl_y = sum(q[j] * math.log(q[j] / (1.0 / k)) for j in range(k))
        expected = sum(q[j] * float(log_px[j, b]) for j in range(k)) - kl_y - sum(q[j] * float(kl_z[j, b]) for j in range(k))
        assert float(terms["ll"][b]) == pytest.approx(expected, rel=1e-5)
        assert float(terms["kl_y"][b]) == pytest.approx(kl_y, rel=1e-5, abs=1e-7)
    y = torch.tensor([0, 2, 1, 1, 0])
    sup = MixtureELBO().supervised(logits, log_px, kl_z, y)
    for b in range(batch):
        expected = float(log_px[y[b], b]) + float(torch.log_softmax(logits[b], 0)[y[b]]) - float(kl_z[y[b], b])
        assert float(sup["ll"][b]) == pytest.approx(expected, rel=1e-5)
    with pytest.raises(LossInputError, match="must be \\(K, B\\)"):
        MixtureELBO()(logits, log_px.t(), kl_z)
    with pytest.raises(LossInputError, match="index"):
        MixtureELBO().supervised(logits, log_px, kl_z, torch.tensor([0, 3, 1, 1, 0]))


def test_gaussian_kl_matches_torch_distributions():
    torch.manual_seed(1)
    mq, mp = torch.randn(4, 6), torch.randn(4, 6)
    vq, vp = torch.rand(4, 6) + 0.1, torch.rand(4, 6) + 0.1
    expected = kl_divergence(Normal(mq, vq.sqrt()), Normal(mp, vp.sqrt())).sum(-1)
    torch.testing.assert_close(diag_gaussian_kl(mq, vq, mp, vp), expected)


def test_model_elbo_against_explicit_computation():
    """Tiny model, 3 active components: rebuild every term with torch.distributions, per sample and component."""
    torch.manual_seed(0)
    model = CurlModel(6, ModelConfig(n_enc=[5], n_dec=[4], n_z=2, n_y=4, n_y_active=3))
    with torch.no_grad():
        model.cluster.bias.normal_()  # break the symmetry of the zero-initialised biases
        model.decoder.prior_mu.bias.normal_()
    x = (torch.rand(7, 6) > 0.5).float()
    torch.manual_seed(5)
    terms = model.elbo_terms(x)
    torch.manual_seed(5)
    eps = torch.randn(3, 7, 2)  # the model draws one (K, B, n_z) standard normal
    with torch.no_grad():
        h = torch.relu(x @ model.encoder[0].weight.t() + model.encoder[0].bias)
        qy = Categorical(logits=h @ model.cluster.weight[:3].t() + model.cluster.bias[:3])
        expected = []
        for b in range(7):
            total = -kl_divergence(Categorical(probs=qy.probs[b]), Categorical(probs=torch.full((3,), 1 / 3)))
            for k in range(3):
                out = h[b] @ model.latent_w[k] + model.latent_b[k]
                q_z = Normal(out[:2], torch.nn.functional.softplus(out[2:]).sqrt())
                onehot = torch.nn.functional.one_hot(torch.tensor(k), 4).float()
                p_z = Normal(model.decoder.prior_mu(onehot),
                             torch.nn.functional.softplus(model.decoder.prior_sigma(onehot)).sqrt())
                z = q_z.mean + q_z.stddev * eps[k, b]
                logits = model.decoder.data(z)
                log_px = Bernoulli(logits=logits).log_prob(x[b]).sum()
                total = total + qy.probs[b, k] * (log_px - kl_divergence(q_z, p_z).sum())
            expected.append(float(total))
    torch.testing.assert_close(terms["ll"].detach(), torch.tensor(expected), rtol=1e-5, atol=1e-4)
    assert terms["qy"].shape == (7, 3)  # only the active components


def test_inactive_components_get_no_gradient():
    torch.manual_seed(0)
    model = CurlModel(6, ModelConfig(n_enc=[5], n_dec=[4], n_z=2, n_y=4, n_y_active=2))
    (-model.elbo_terms((torch.rand(3, 6) > 0.5).float())["ll"].mean()).backward()
    assert model.cluster.weight.grad[2:].abs().sum() == 0 and model.cluster.weight.grad[:2].abs().sum() > 0
    assert model.latent_w.grad[2:].abs().sum() == 0
    assert model.decoder.prior_mu.weight.grad[:, 2:].abs().sum() == 0
