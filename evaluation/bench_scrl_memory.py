"""Memory of SCRL pretraining data vs the number of images: peak RSS of a fresh process that lists N
images (a COCO json, the official layout), builds :class:`apps.scrl.train.PairDataset` and draws
``--batches`` batches through a ``DataLoader`` with ``--workers`` workers, for N = 1k, 10k, 100k.

The peer is what ``PairDataset`` did before it streamed: decode every image once into a float32 tensor
(longer side <= ``max_side``) and keep it. It is measured at the smallest N only (at 100k images it
would need the bytes printed in its ``extrapolated`` column) in the same way (fresh process, peak RSS).

The N entries of the json point at ``--distinct`` real photos (scikit-image) saved at 640x480 (a COCO-
sized image), so the files on disk stay few while the reader, the path list and the sampler see N
images. RSS: ``resource.getrusage`` peak of the process (+ its finished worker children).

    python -m evaluation.bench_scrl_memory --markdown
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

MAX_SIDE = 160


def make_images(root: Path, distinct: int) -> list[str]:
    """``distinct`` 640x480 JPEGs from scikit-image's sample photos under ``root/images``."""
    import numpy as np
    import skimage.data
    from PIL import Image

    names = ["astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field"]
    (root / "images").mkdir(parents=True, exist_ok=True)
    files = []
    for index in range(distinct):
        picture = getattr(skimage.data, names[index % len(names)])()
        if picture.ndim == 2:
            picture = np.stack([picture] * 3, axis=-1)
        path = root / "images" / f"{index:03d}.jpg"
        if not path.is_file():
            Image.fromarray(picture[..., :3]).resize((640, 480)).save(path, quality=90)
        files.append(path.name)
    return files


def make_json(root: Path, count: int, names: list[str]) -> Path:
    path = root / f"list_{count}.json"
    if not path.is_file():
        images = [{"id": i + 1, "file_name": names[i % len(names)], "width": 640, "height": 480} for i in range(count)]
        path.write_text(json.dumps({"images": images, "annotations": [], "categories": [{"id": 1, "name": "x"}]}))
    return path


CHILD = r"""
import json, resource, sys, torch
from torch.utils.data import DataLoader
sys.path.insert(0, {repo!r})
from apps.scrl.data import unlabelled_images, load_rgb
from apps.scrl.train import PairDataset, collate_pairs
from apps.scrl.views import ViewConfig
def peak():
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return own * 1024, kids * 1024
base = peak()[0]
files = unlabelled_images({json_path!r})
mode = {mode!r}
if mode == "stream":
    dataset = PairDataset(files, ViewConfig(size=96, min_box=16), {max_side})
    loader = DataLoader(dataset, batch_size=32, shuffle=True, num_workers={workers}, collate_fn=collate_pairs)
    for step, batch in enumerate(loader):
        if step + 1 >= {batches}:
            break
    del loader
else:  # the former PairDataset: every image decoded once and kept as float32
    import torch.nn.functional as F
    kept = []
    for path in files:
        image = torch.from_numpy(load_rgb(path)).permute(2, 0, 1).float() / 255.0
        scale = {max_side} / max(image.shape[1:])
        size = (round(image.shape[1] * scale), round(image.shape[2] * scale))
        kept.append(F.interpolate(image[None], size=size, mode="bilinear", antialias=True, align_corners=False)[0])
own, kids = peak()
print(json.dumps({{"base": base, "own": own, "workers": kids, "images": len(files)}}))
"""


def measure(json_path: Path, mode: str, workers: int, batches: int) -> dict[str, float]:
    repo = str(Path(__file__).resolve().parent.parent)
    code = CHILD.format(repo=repo, json_path=str(json_path), mode=mode, max_side=MAX_SIDE, workers=workers,
                        batches=batches)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=repo)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/scrl_memory")
    parser.add_argument("--counts", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--distinct", type=int, default=6)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batches", type=int, default=4)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args(argv)
    root = Path(args.out)
    names = make_images(root, args.distinct)
    rows = []
    for count in args.counts:
        m = measure(make_json(root, count, names), "stream", args.workers, args.batches)
        rows.append({"method": "streaming PairDataset", "images": count, **m})
    smallest = min(args.counts)
    m = measure(make_json(root, smallest, names), "eager", 0, 0)
    rows.append({"method": "decode-all (former)", "images": smallest, **m})
    (root / "results.json").write_text(json.dumps(rows, indent=2))
    mib = 2 ** 20
    if args.markdown:
        print(f"| data | images | peak RSS main (MiB) | growth over imports (MiB) | peak RSS of a worker (MiB) |")
        print("|---|---|---|---|---|")
    for row in rows:
        growth = (row["own"] - row["base"]) / mib
        line = (row["method"], row["images"], f"{row['own'] / mib:.0f}", f"{growth:.0f}",
                f"{row['workers'] / mib:.0f}" if row["workers"] else "-")
        print("| " + " | ".join(str(v) for v in line) + " |" if args.markdown else "  ".join(str(v) for v in line))
    eager = rows[-1]
    per_image = (eager["own"] - eager["base"]) / eager["images"]
    print(f"decode-all: {per_image / 1024:.0f} KiB per image -> {per_image * max(args.counts) / 2**30:.1f} GiB "
          f"extrapolated to {max(args.counts)} images")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
