"""The restorer starts as bicubic interpolation and its degradation embedding really modulates it."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from apps.sr.model import build_model, count_parameters
from apps.sr.train import ModelConfig, model_kwargs


def test_untrained_network_is_exactly_bicubic():
    torch.manual_seed(0)
    model = build_model("crlsr", **model_kwargs(ModelConfig())).eval()
    x = torch.rand(2, 3, 12, 17)
    expected = F.interpolate(x, scale_factor=4, mode="bicubic", align_corners=False)
    with torch.no_grad():
        torch.testing.assert_close(model(x), expected, rtol=0, atol=0)


def test_degradation_embedding_modulates_the_restorer():
    torch.manual_seed(1)
    model = build_model("crlsr", scale=2, width=8, invariant=6, enc_blocks=1, body_blocks=1, refine_blocks=1)
    with torch.no_grad():
        for p in model.parameters():  # leave the zero-initialised state: heads and FiLM non-zero
            if p.abs().max() == 0:
                p.normal_(0, 0.2)
    x = torch.rand(1, 3, 10, 10)
    out = model(x, return_all=True)
    assert out["degradation"].shape == (1, 16, 10, 10)
    with torch.no_grad():  # switching FiLM off changes the output: the embedding is used
        for film in (model.film_body, model.film_refine):
            film.affine.weight.zero_()
            film.affine.bias.zero_()
        assert (model(x) - out["sr"]).abs().max() > 1e-3
    plain = build_model("crlsr", scale=2, width=8, invariant=6, enc_blocks=1, body_blocks=1, refine_blocks=1,
                        condition=False)
    assert count_parameters(plain) < count_parameters(model)
    assert plain(x, return_all=True)["degradation"] is None


def test_weight_header_is_one_key_and_old_headers_still_load(tmp_path):
    """safetensors writes its metadata map in hash order (varies per process): one key keeps the
    bytes of a weight file a function of the tensors alone."""
    import json

    from apps.sr.model import META_KEY, load_model, model_metadata
    from shared.weights import save_safetensors

    kwargs = {"scale": 2, "width": 8, "invariant": 6, "enc_blocks": 1, "body_blocks": 1, "refine_blocks": 1}
    meta = model_metadata("crlsr", kwargs)
    assert list(meta) == [META_KEY] and json.loads(meta[META_KEY])["model_kwargs"] == kwargs
    model = build_model("crlsr", **kwargs)
    old = tmp_path / "old.safetensors"
    save_safetensors(model.state_dict(), old, {"arch": "crlsr", "model_kwargs": json.dumps(kwargs)})
    new = tmp_path / "new.safetensors"
    save_safetensors(model.state_dict(), new, meta)
    for path in (old, new):
        assert load_model(path, 2).scale == 2
