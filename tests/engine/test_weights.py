"""Safe loading: no code execution, clear errors, and layout remapping into torchvision ResNets."""
from __future__ import annotations

import pickle

import pytest
import torch
from torch import nn

from shared.backbones import build_backbone
from shared.errors import CvsuiteError
from shared.weights import load_backbone, load_into, load_state_dict, save_float16_copy, save_safetensors


class _Evil:
    """Unpickling this calls open(marker, "w"): proof that code ran."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_malicious_pickle_is_refused(tmp_path):
    marker = tmp_path / "payload-ran"
    path = tmp_path / "evil.pth"
    with path.open("wb") as handle:
        pickle.dump({"state_dict": {"w": _Evil(str(marker))}}, handle)
    torch.save({"model": {"w": _Evil(str(marker))}}, tmp_path / "evil_zip.pt")
    assert not marker.exists()
    for bad in (path, tmp_path / "evil_zip.pt"):
        with pytest.raises(CvsuiteError, match="refusing to load .*evil"):
            load_state_dict(bad)
    assert not marker.exists()  # the payload never ran
    pickle.loads(path.read_bytes())  # while a plain unpickle would have run it
    assert marker.exists()


def test_truncated_and_missing_files(tmp_path):
    good = tmp_path / "w.safetensors"
    save_safetensors({"a": torch.ones(100)}, good)
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(good.read_bytes()[:50])
    with pytest.raises(CvsuiteError, match="cut.safetensors"):
        load_state_dict(cut)
    torch.save({"a": torch.ones(1000)}, tmp_path / "ok.pt")
    (tmp_path / "cut.pt").write_bytes((tmp_path / "ok.pt").read_bytes()[:300])
    with pytest.raises(CvsuiteError, match="cut.pt"):
        load_state_dict(tmp_path / "cut.pt")
    with pytest.raises(CvsuiteError, match="not found"):
        load_state_dict(tmp_path / "nope.pt")
    (tmp_path / "notes.pth").write_text("root:x:0:0:root:/root:/bin/bash\n")
    with pytest.raises(CvsuiteError, match="notes.pth"):
        load_state_dict(tmp_path / "notes.pth")


def test_shape_mismatch_names_file_and_key(tmp_path):
    model = nn.Linear(3, 2)
    with pytest.raises(CvsuiteError, match=r"w.pt: shape mismatch at key 'weight'"):
        load_into(model, {"weight": torch.zeros(5, 3), "bias": torch.zeros(2)}, "w.pt")
    with pytest.raises(CvsuiteError, match="missing key 'bias'"):
        load_into(model, {"weight": torch.zeros(2, 3)}, "w.pt")


@pytest.mark.parametrize("layout", ["torchvision", "ours", "ddp", "moco", "sequential"])
def test_load_backbone_remaps_layouts(tmp_path, layout):
    from torchvision.models import resnet18

    torch.manual_seed(1)
    reference = resnet18(weights=None)
    sd = reference.state_dict()
    if layout == "ours":
        sd = {k: v for k, v in sd.items() if not k.startswith("fc.")}
    elif layout == "ddp":
        sd = {"module." + k: v for k, v in sd.items()}
    elif layout == "moco":
        sd = {"module.encoder_q." + k: v for k, v in sd.items()}
        sd["module.queue"] = torch.zeros(128, 16)
    elif layout == "sequential":
        names = list(reference._modules)
        sd = {f"encoder.{names.index(k.split('.')[0])}.{k.split('.', 1)[1]}": v
              for k, v in sd.items() if not k.startswith("fc.")}
    path = tmp_path / "ckpt.pth"
    torch.save({"state_dict": sd, "epoch": 3}, path)
    model, report = load_backbone(path, "resnet18")
    assert report["missing"] == []
    for key, value in model.state_dict().items():
        assert torch.equal(value, reference.state_dict()[key]), key
    x = torch.randn(1, 3, 64, 64)
    reference.fc = nn.Identity()
    model.eval(), reference.eval()
    torch.testing.assert_close(model(x), reference(x))


def test_load_backbone_wrong_arch_is_clear(tmp_path):
    save_safetensors({"foo.weight": torch.zeros(2)}, tmp_path / "x.safetensors")
    with pytest.raises(CvsuiteError, match="no resnet18 weights"):
        load_backbone(tmp_path / "x.safetensors", "resnet18")


def test_backbones_shapes():
    x = torch.randn(2, 3, 32, 32)
    assert build_backbone("small_cnn", width=8)(x).shape == (2, 32)
    assert build_backbone("small_cnn", width=8, pooled=False)(x).shape == (2, 32, 4, 4)
    assert build_backbone("resnet18")(x).shape == (2, 512)
    assert build_backbone("resnet18", pooled=False)(torch.randn(1, 3, 64, 64)).shape == (1, 512, 2, 2)


def test_save_safetensors_bytes_do_not_depend_on_the_process(tmp_path):
    """safetensors writes its header map in per-process hash order; ours is canonical (sorted keys)."""
    import subprocess
    import sys

    from safetensors.torch import load_file, safe_open

    script = (
        "import sys, torch; from shared.weights import save_safetensors; "
        "torch.manual_seed(0); "
        "t = {f'layer{i}.weight': torch.randn(3, i + 1) for i in range(6)}; "
        "save_safetensors(t, sys.argv[1], metadata={f'key{i}': str(i) for i in range(8)})"
    )
    paths = [tmp_path / f"w{i}.safetensors" for i in range(3)]
    for path in paths:
        subprocess.run([sys.executable, "-c", script, str(path)], check=True)
    blobs = {p.read_bytes() for p in paths}
    assert len(blobs) == 1
    tensors = load_file(str(paths[0]))
    torch.manual_seed(0)
    for i in range(6):
        assert torch.equal(tensors[f"layer{i}.weight"], torch.randn(3, i + 1))
    with safe_open(str(paths[0]), framework="pt") as handle:
        assert handle.metadata() == {f"key{i}": str(i) for i in range(8)}


def test_float16_copy_halves_floats_keeps_integers_and_loads_back(tmp_path):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    net(torch.rand(2, 3, 8, 8))  # num_batches_tracked = 1, running stats moved
    source, target = tmp_path / "f32.safetensors", tmp_path / "f16.safetensors"
    save_safetensors(net.state_dict(), source, metadata={"kind": "demo"})
    meta = save_float16_copy(source, target)
    assert meta == {"kind": "demo", "stored_dtype": "float16"}
    copy = load_state_dict(target)
    for key, value in net.state_dict().items():
        if value.is_floating_point():
            assert copy[key].dtype == torch.float16
            assert torch.equal(copy[key], value.to(torch.float16))  # plain rounding, nothing else
        else:
            assert copy[key].dtype == value.dtype and torch.equal(copy[key], value)
    restored = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    load_into(restored, copy, target)  # float16 tensors go into a float32 module
    assert restored[0].weight.dtype == torch.float32
    assert torch.allclose(restored[0].weight, net[0].weight, atol=1e-3)
    save_float16_copy(source, tmp_path / "again.safetensors")  # deterministic bytes
    assert (tmp_path / "again.safetensors").read_bytes() == target.read_bytes()
