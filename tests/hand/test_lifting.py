"""The kinematic-prior lifter, the right-hand convention (mirroring) and the fine-tuning compositing fixes."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from apps.hand.augment import _occluder, mirror_sample
from apps.hand.data import REF_BONE
from apps.hand.lifting import Lifter, normalise_layout, random_rotations, sample_views, train_lifter
from .conftest import TINY_TRAIN


def test_sampled_views_are_consistent_projections():
    rng = np.random.default_rng(0)
    uv, rel = sample_views(rng, 64, noise=0.0)
    assert uv.shape == (64, 21, 2) and rel.shape == (64, 21, 3)
    assert np.allclose(rel[:, 0], 0) and np.allclose(np.linalg.norm(rel[:, REF_BONE[1]] - rel[:, REF_BONE[0]], axis=-1), 1, atol=1e-5)
    assert (uv > -0.3).all() and (uv < 1.3).all()                     # hands land in (or near) the crop
    R = random_rotations(rng, 100)
    assert np.allclose(R @ R.transpose(0, 2, 1), np.eye(3), atol=1e-9) and np.allclose(np.linalg.det(R), 1)


def test_layout_ignores_crop_position_and_scale():
    uv = torch.rand(3, 21, 2)
    a, b = normalise_layout(uv), normalise_layout(0.5 * uv + 0.2)
    assert torch.allclose(a[:, :42], b[:, :42], atol=1e-5)          # the shape part is invariant
    assert not torch.allclose(a[:, 42:], b[:, 42:])                  # size and centre are passed on


def test_lifter_learns_and_is_root_relative():
    torch.manual_seed(0)
    rng = np.random.default_rng(1)
    uv, rel = sample_views(rng, 256)
    before = (Lifter()(torch.from_numpy(uv)) - torch.from_numpy(rel)).abs().mean()
    net = train_lifter(150, batch=64, seed=0)
    with torch.no_grad():
        pred = net(torch.from_numpy(uv))
    assert torch.allclose(pred[:, 0], torch.zeros(256, 3))
    assert (pred - torch.from_numpy(rel)).abs().mean() < 0.8 * before


def test_mirror_sample_moves_labels_with_the_pixels():
    img = np.zeros((32, 32, 3), np.uint8)
    uv = np.array([[3.0, 7.0], [20.0, 11.0]]) / 32  # crop units, pixel centres at integers
    img[7, 3], img[11, 20] = 255, 128
    out, uv2, xyz2 = mirror_sample(img, uv, np.array([[0.5, 1.0, 2.0], [-1.0, 0.0, 1.0]]))
    px = np.round(uv2 * 32).astype(int)
    assert out[px[0, 1], px[0, 0], 0] == 255 and out[px[1, 1], px[1, 0], 0] == 128
    assert np.allclose(xyz2, [[-0.5, 1.0, 2.0], [1.0, 0.0, 1.0]])
    back = mirror_sample(out, uv2, xyz2)
    assert np.array_equal(back[0], img) and np.allclose(back[1], uv)


def test_soft_mask_keeps_thin_fingers_at_small_sizes():
    from apps.hand.train import soft_mask

    small = np.zeros((64, 64), bool)
    small[10:50, 30:32] = True                                       # a 2-px finger at 64 px
    assert soft_mask(small, 64)[30, 30:32].min() > 0.5               # was erased by the 3x3 erosion
    big = np.zeros((256, 256), bool)
    big[40:200, 120:128] = True
    m = soft_mask(big, 256)
    assert m[100, 121:127].min() > 0.5 and m[100, 120] < 0.5         # >= 128 px: the fringe is eroded


def test_occluders_never_hide_the_whole_hand():
    rng = np.random.default_rng(0)
    uv_px = np.random.default_rng(1).uniform(20, 44, (21, 2))
    img = np.zeros((64, 64, 3), np.uint8)
    patch = np.full((64, 64, 3), 255, np.uint8)
    for _ in range(200):
        out = _occluder(img, uv_px, rng, patch)
        covered = out[np.round(uv_px[:, 1]).astype(int), np.round(uv_px[:, 0]).astype(int)].any(-1)
        assert covered.mean() < 0.75


def test_right_hand_estimator_sees_left_hands_mirrored(tiny_hanco, tmp_path):
    """Training data and evaluation mirror left hands for a right-hand estimator; a left hand's mirrored
    image keeps its keypoints on the hand pixels."""
    from apps.hand.data import HanCo
    from apps.hand.infer import hanco_targets, right_handed_view
    from apps.hand.train import HanCoImages, LabelledHands, left_flags

    ds = HanCo(tiny_hanco)
    images = HanCoImages(ds, ds.sequences, 48, with_foreground=True, labelled=True)
    left = left_flags(images)
    assert left.any() or (~left).any()
    sides = {s: ds.shape(s, 0)["side"] for s in ds.sequences}
    assert all(left[i] == (sides[s] == "left") for i, (s, _, _) in enumerate(images.samples))
    pixels, gt = right_handed_view(images, hanco_targets(images))
    plain = hanco_targets(images)
    for i in np.nonzero(left)[0][:4]:
        assert np.array_equal(pixels[i], images.images[i][:, ::-1])
        assert np.allclose(gt["uv"][i, :, 0], 47 - plain["uv"][i, :, 0]) and np.allclose(gt["rel"][i, :, 0], -plain["rel"][i, :, 0])
    data = LabelledHands(images, np.arange(len(images.samples)), augment=False, right_hands=True)
    i = int(np.nonzero(left)[0][0]) if left.any() else 0
    item = data[i]
    assert np.allclose(item["uv"].numpy() * 48, gt["uv"][i], atol=1e-4)


@pytest.mark.parametrize("hands", ["right", "both"])
def test_lifter_estimator_round_trip(tmp_path, hands):
    from apps.hand.model import KeypointNet
    from shared.weights import save_safetensors

    torch.manual_seed(0)
    net = KeypointNet(lifter=True, hands=hands).eval()
    save_safetensors(net.export_state_dict(), tmp_path / "w.safetensors", metadata={**net.arch, "image_size": "64"})
    loaded, meta = KeypointNet.from_file(tmp_path / "w.safetensors")
    x = torch.rand(2, 3, 64, 64)
    assert loaded.lifter is not None and loaded.hands == hands
    out, ref = loaded(x), net(x)
    assert torch.allclose(out["xyz"], ref["xyz"]) and "xyz_maps" in out
    assert torch.allclose(out["xyz"][:, 0], torch.zeros(2, 3))


def test_infer_left_mirrors_for_a_right_hand_estimator(tmp_path):
    """``--left`` on a mirrored photo gives the mirror image of the right-hand result."""
    from apps.hand.infer import infer_images
    from apps.hand.model import KeypointNet
    from shared.data.images import bundled_photo, write_image
    from shared.guard import OutputGuard

    torch.manual_seed(0)
    net = KeypointNet(lifter=True, hands="right").eval()
    photo = bundled_photo("coffee")[:200, :200]
    write_image(tmp_path / "a.png", photo)
    write_image(tmp_path / "b.png", np.ascontiguousarray(photo[:, ::-1]))
    (right,) = infer_images(net, 64, [tmp_path / "a.png"], tmp_path / "o1", OutputGuard(), warn=lambda s: None)
    (left,) = infer_images(net, 64, [tmp_path / "b.png"], tmp_path / "o2", OutputGuard(), warn=lambda s: None, left=True)
    a, b = np.array(right["uv_px"]), np.array(left["uv_px"])
    assert np.allclose(b[:, 0], 199 - a[:, 0], atol=1e-2) and np.allclose(b[:, 1], a[:, 1], atol=1e-2)
    xa, xb = np.array(right["xyz_root_relative_refbone"]), np.array(left["xyz_root_relative_refbone"])
    assert np.allclose(xb[:, 0], -xa[:, 0], atol=1e-3) and np.allclose(xb[:, 1:], xa[:, 1:], atol=1e-3)


def test_whole_photo_negatives_look_like_infer_crops():
    from apps.hand.train import whole_photo_views

    views = whole_photo_views(32)
    assert views.shape[1:] == (32, 32, 3) and views.dtype == np.uint8 and len(views) > 5
    # a non-square photo is padded grey (114), not squashed
    assert any((v[0] == 114).all() or (v[:, 0] == 114).all() for v in views)


def _shrunk(uv: np.ndarray, factor: float = 0.6) -> np.ndarray:
    """A systematic 2-D error like the estimator's: every layout shrunk towards its centre."""
    centre = uv.mean(1, keepdims=True)
    return (centre + factor * (uv - centre)).astype(np.float32)


def test_refit_lifter_learns_the_estimators_2d_errors():
    """A lifter trained on exact 2-D, refitted on (distorted 2-D, true 3-D) pairs, lifts distorted 2-D better
    than before; it starts from a copy (the original is untouched) and is root-relative."""
    from apps.hand.lifting import refit_lifter

    prior = train_lifter(150, batch=64, seed=0, width=64, left=0.0)
    rng = np.random.default_rng(5)
    uv, rel = sample_views(rng, 512, noise=0.0, left=0.0)
    test_uv, test_rel = sample_views(rng, 256, noise=0.0, left=0.0)
    before_state = {k: v.clone() for k, v in prior.state_dict().items()}
    refit = refit_lifter(prior, _shrunk(uv), rel, steps=150, batch=64, lr=1e-3, prior_fraction=0.25, seed=0)
    assert all(torch.equal(before_state[k], v) for k, v in prior.state_dict().items())
    with torch.no_grad():
        err_before = (prior(torch.from_numpy(_shrunk(test_uv))) - torch.from_numpy(test_rel)).abs().mean()
        pred = refit(torch.from_numpy(_shrunk(test_uv)))
    assert torch.allclose(pred[:, 0], torch.zeros(256, 3))
    assert (pred - torch.from_numpy(test_rel)).abs().mean() < 0.9 * err_before


def test_refit_with_the_metric_loss_and_confidence_inputs():
    from apps.hand.lifting import refit_lifter

    rng = np.random.default_rng(0)
    uv, rel = sample_views(rng, 64, noise=0.0, left=0.0)
    conf = rng.uniform(0, 1, (64, 21)).astype(np.float32)
    reader = Lifter(width=32, confidence_inputs=True)
    with pytest.raises(ValueError, match="confidence"):
        reader(torch.from_numpy(uv))
    with pytest.raises(ValueError, match="prior_fraction=0"):
        refit_lifter(reader, uv, rel, conf, steps=1, prior_fraction=0.5)
    fitted = refit_lifter(reader, uv, rel, conf, steps=3, batch=16, prior_fraction=0.0, pa_weight=1.0)
    with torch.no_grad():
        out = fitted(torch.from_numpy(uv), torch.from_numpy(conf))
        other = fitted(torch.from_numpy(uv), torch.from_numpy(1 - conf))
    assert torch.isfinite(out).all() and not torch.allclose(out, other)  # the confidences are read
    with pytest.raises(ValueError, match="pair up"):
        refit_lifter(Lifter(width=32), uv, rel[:10], steps=1)
    only_prior = refit_lifter(Lifter(width=32), uv, rel, steps=2, batch=8, prior_fraction=1.0, pa_weight=1.0)
    assert all(torch.isfinite(p).all() for p in only_prior.parameters())   # the control without own pairs


def test_own_prediction_pairs_mirror_left_hands_like_the_benchmark(tiny_hanco):
    """The refit's training pairs use the benchmark's right-hand convention: the 3-D targets equal
    hanco_targets + right_handed_view, and the 2-D is the estimator's prediction on the mirrored image."""
    from apps.hand.infer import hanco_targets, predict, right_handed_view
    from apps.hand.model import KeypointNet
    from apps.hand.train import LabelledHands, left_flags, open_labelled, own_prediction_pairs

    images = open_labelled(tiny_hanco, 32)
    assert left_flags(images).any() and not left_flags(images).all()
    data = LabelledHands(images, np.arange(len(images.samples)), augment=False, right_hands=True, with_fits=False)
    torch.manual_seed(0)
    net = KeypointNet("resnet10_small", 8, 64, None, "heatmap", True, "right").eval()
    uv, rel = own_prediction_pairs(net, data, batch=5)
    pixels, gt = right_handed_view(images, hanco_targets(images))
    assert np.allclose(rel, gt["rel"] / gt["scale"][:, None, None], atol=1e-4)
    assert np.allclose(uv, predict(net, pixels)[0], atol=1e-5)


def test_train_refits_the_lifter_on_its_own_predictions(tiny_hanco, tmp_path, run_cli):
    """`lifter_refit_steps`: after training, only the lifter changes (trained again at lr ~0 otherwise)."""
    from apps.hand.model import read_metadata
    from shared.weights import load_state_dict

    common = [*TINY_TRAIN, "--steps", "1", "train.lr=1e-9", "--data", tiny_hanco]
    assert run_cli(["hand", "train", "--out", tmp_path / "plain", *common])[0] == 0
    code, out, err = run_cli(["hand", "train", "--out", tmp_path / "refit", "lifter_refit_steps=4", *common])
    assert code == 0, err
    plain, refit = load_state_dict(tmp_path / "plain/model.safetensors"), load_state_dict(tmp_path / "refit/model.safetensors")
    assert plain.keys() == refit.keys()
    changed = {k for k in plain if not torch.equal(plain[k], refit[k])}
    assert changed and all(k.startswith("lifter.") for k in changed)
    assert "own predictions" in read_metadata(tmp_path / "refit/model.safetensors")["lifter_refit"]


def test_long_lifter_fits_resume_exactly(tmp_path, monkeypatch):
    """A lifter fit stopped at a deadline (checkpoint saved, None returned) and called again with the same arguments
    ends with the same weights as the uninterrupted fit; ``blocks`` sets the depth; ``every`` sees the curve."""
    import apps.hand.lifting as lifting

    whole = train_lifter(12, batch=8, seed=3, width=16, blocks=3, left=0.0)
    assert len(whole.blocks) == 3
    clock = iter(range(10_000))
    monkeypatch.setattr(lifting.time, "monotonic", lambda: next(clock))   # one tick per step: ticks 0..5 pass, 6 > 5 stops
    ckpt = tmp_path / "lifter.pt"
    assert train_lifter(12, batch=8, seed=3, width=16, blocks=3, left=0.0, checkpoint=ckpt, stop_at=5) is None
    assert torch.load(ckpt, weights_only=True)["step"] == 6
    seen = []
    resumed = train_lifter(12, batch=8, seed=3, width=16, blocks=3, left=0.0, checkpoint=ckpt,
                           every=lambda step, net: seen.append(step))
    assert resumed is not None and not resumed.training and seen == []          # every 500 steps: none in 12
    assert all(torch.equal(a, b) for a, b in zip(whole.state_dict().values(), resumed.state_dict().values()))
    with pytest.raises(ValueError, match="12-step fit"):
        train_lifter(13, batch=8, seed=3, width=16, blocks=3, left=0.0, checkpoint=ckpt)
