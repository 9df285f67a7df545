"""Safe weight files: safetensors for what we ship, ``weights_only`` loading for everything else.

Nothing here ever unpickles code. Errors name the file and the first offending key.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import re
import struct
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .engine.checkpoint import load_checkpoint
from .errors import CvsuiteError

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
MANIFEST = WEIGHTS_DIR / "MANIFEST.json"


def save_safetensors(state_dict: dict[str, torch.Tensor], path: str | Path,
                     metadata: dict[str, str] | None = None) -> None:
    """Write tensors as safetensors (contiguous CPU copies, so shared/non-contiguous tensors are fine).

    The bytes depend only on the tensors and metadata: safetensors serialises its header map in a
    per-process hash order, so the header is re-written with sorted keys (same format, any reader
    loads it). Identical trainings therefore give identical files (sha256 in the manifest).
    """
    from safetensors.torch import save

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in state_dict.items() if isinstance(v, torch.Tensor)}
    blob = save(tensors, metadata={k: str(v) for k, v in (metadata or {}).items()})
    (header_len,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + header_len])
    canonical = json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    canonical += b" " * (-len(canonical) % 8)  # the format pads the header with spaces to 8 bytes
    from .guard import open_atomic  # a fresh exclusive temp file, renamed over ``path``

    with open_atomic(path, "wb", fsync=True) as handle:
        handle.write(struct.pack("<Q", len(canonical)))
        handle.write(canonical)
        handle.write(blob[8 + header_len:])


def save_float16_copy(source: str | Path, target: str | Path) -> dict[str, str]:
    """The shipped form of a trained weight file: every floating tensor stored as float16 (integer
    tensors such as BatchNorm's ``num_batches_tracked`` kept), the metadata kept plus ``stored_dtype``;
    returns that metadata. Halves a file; loading into a float32 module casts back (``load_into``)."""
    from safetensors import safe_open

    with safe_open(str(source), "pt") as handle:
        meta = dict(handle.metadata() or {})
        tensors = {k: handle.get_tensor(k) for k in handle.keys()}
    tensors = {k: v.to(torch.float16) if v.is_floating_point() else v for k, v in tensors.items()}
    meta["stored_dtype"] = "float16"
    save_safetensors(tensors, Path(target), metadata=meta)
    return meta


def _unwrap(obj: Any, path: Path) -> dict[str, torch.Tensor]:
    """Find the tensor dict inside common checkpoint containers."""
    for key in ("state_dict", "model", "model_state", "net", "params", "network"):
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            inner = obj[key]
            if any(isinstance(v, torch.Tensor) for v in inner.values()):
                obj = inner
                break
    if not isinstance(obj, dict):
        raise CvsuiteError(f"{path} holds no state dict (found {type(obj).__name__})")
    tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise CvsuiteError(f"{path} holds no tensors")
    return tensors


def load_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors from a ``.safetensors`` file or a torch checkpoint (``weights_only=True``)."""
    path = Path(path)
    if not path.is_file():
        raise CvsuiteError(f"weights file not found: {path}")
    with path.open("rb") as handle:
        head = handle.read(8)
    is_zip_or_pickle = head[:2] == b"PK" or head[:1] == b"\x80"
    if path.suffix == ".safetensors" or not is_zip_or_pickle:
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except (SafetensorError, OSError, ValueError) as exc:
            if path.suffix == ".safetensors":
                raise CvsuiteError(f"cannot read {path}: not a valid safetensors file ({str(exc)[:160]})") from None
    return _unwrap(load_checkpoint(path), path)


def load_into(module: nn.Module, state_dict: dict[str, torch.Tensor], path: str | Path = "<memory>",
              strict: bool = True) -> tuple[list[str], list[str]]:
    """Copy ``state_dict`` into ``module``; clear error on shape mismatch (always) and on missing or
    unexpected keys (when ``strict``). Returns ``(missing, unexpected)``."""
    own = module.state_dict()
    for key, value in state_dict.items():
        if key in own and own[key].shape != value.shape:
            raise CvsuiteError(f"{path}: shape mismatch at key {key!r}: file {tuple(value.shape)}, "
                               f"model {tuple(own[key].shape)}")
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    if strict and missing:
        raise CvsuiteError(f"{path}: missing key {missing[0]!r} ({len(missing)} missing in all)")
    if strict and unexpected:
        raise CvsuiteError(f"{path}: unexpected key {unexpected[0]!r} ({len(unexpected)} unexpected in all)")
    module.load_state_dict(state_dict, strict=False)
    return missing, unexpected


_PREFIXES = ("module.", "encoder_q.", "backbone.", "model.", "encoder.", "net.", "online_encoder.",
             "online_network.", "features.")


def remap_keys(state_dict: dict[str, torch.Tensor], target: nn.Module) -> dict[str, torch.Tensor]:
    """Rename checkpoint keys to ``target``'s names.

    Handles DataParallel/DDP ``module.``, MoCo ``encoder_q.``, ``backbone.``/``model.`` wrappers and
    ``encoder.N.`` sequential layouts (``nn.Sequential(*resnet.children())``: index N is the N-th child).
    """
    own = target.state_dict()
    children = list(target._modules.keys())
    out: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        name = key
        changed = True
        while name not in own and changed:
            changed = False
            for prefix in _PREFIXES:
                if name.startswith(prefix):
                    name, changed = name[len(prefix):], True
                    break
            match = re.match(r"^(\d+)\.(.*)$", name)
            if name not in own and match and int(match.group(1)) < len(children):
                name, changed = f"{children[int(match.group(1))]}.{match.group(2)}", True
        out[name] = value
    return out


def load_backbone(path: str | Path, arch: str = "resnet18", strict: bool = False, **kwargs: Any) -> tuple[nn.Module, dict[str, list[str]]]:
    """Build ``arch`` from :mod:`shared.backbones` and load ``path`` into it, remapping common layouts.

    Returns the module and a report ``{"missing": [...], "unexpected": [...]}`` (heads such as
    ``fc.*``/projectors show up as unexpected; with ``strict`` missing backbone keys are an error).
    """
    from .backbones import build_backbone

    model = build_backbone(arch, **kwargs)
    raw = load_state_dict(path)
    mapped = remap_keys(raw, model)
    own = model.state_dict()
    if not any(k in own for k in mapped):
        raise CvsuiteError(f"{path}: no {arch} weights found (first key {next(iter(raw))!r})")
    matching = {k: v for k, v in mapped.items() if k in own}
    missing, _ = load_into(model, matching, path, strict=strict)
    unexpected = [k for k in mapped if k not in own]
    return model, {"missing": missing, "unexpected": unexpected}


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_manifest() -> dict[str, dict[str, Any]]:
    if not MANIFEST.is_file():
        return {}
    return json.loads(MANIFEST.read_text())


def add_manifest_entry(name: str, file: str | Path, recipe: str, metrics: dict[str, Any],
                       extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Record a shipped weight file (sha256, size, how it was trained, its metrics) in ``weights/MANIFEST.json``."""
    file = Path(file).resolve()
    try:
        relative = file.relative_to(WEIGHTS_DIR)
    except ValueError:
        raise CvsuiteError(f"{file} is not inside {WEIGHTS_DIR}") from None
    entry = {"file": str(relative), "sha256": sha256_of(file), "bytes": file.stat().st_size,
             "recipe": recipe, "metrics": metrics, **(extra or {})}
    WEIGHTS_DIR.mkdir(exist_ok=True)
    with open(WEIGHTS_DIR / ".manifest.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        manifest = read_manifest()
        manifest[name] = entry
        MANIFEST.write_text(json.dumps(dict(sorted(manifest.items())), indent=2) + "\n")
    return entry


def shipped_weight(name: str) -> Path:
    """Path of a shipped weight file by manifest name, after checking its sha256."""
    manifest = read_manifest()
    if name not in manifest:
        raise CvsuiteError(f"no shipped weights named {name!r} in {MANIFEST}")
    entry = manifest[name]
    path = WEIGHTS_DIR / entry["file"]
    if not path.is_file():
        raise CvsuiteError(f"shipped weights {path} are missing (listed in {MANIFEST})")
    if sha256_of(path) != entry["sha256"]:
        raise CvsuiteError(f"shipped weights {path} do not match their sha256 in {MANIFEST}")
    return path
