"""``cvsuite points synth|train|infer|eval|probe`` and the points part of ``cvsuite demo``."""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from shared.cli_utils import RUN_FLAGS, add_app_parser, add_force_arg, add_run_args, config_from_args
from shared.errors import CvsuiteError, UsageError, printable
from shared.guard import OutputGuard, atomic_output, write_atomic

SHIPPED_SEGMENTER = "points_segmenter_synth"
SHIPPED_ENCODER = "points_scl_encoder_synth"


def _weights(path: str | None, shipped: str) -> str:
    if path:
        return path
    from shared.weights import shipped_weight

    return str(shipped_weight(shipped))


def cmd_synth(args: argparse.Namespace) -> int:
    from .synth import write_dataset

    if not 5 <= args.shapes <= 1_000_000:
        raise UsageError("--shapes must be between 5 (one per category) and 1000000")
    if not 16 <= args.points <= 100_000:
        raise UsageError("--points must be between 16 and 100000")
    guard = OutputGuard(force=args.force)
    out = guard.directory(args.out)
    counts = write_dataset(out, args.layout, args.shapes, args.seed, args.points, claim=guard.file)
    guard.record()
    print(f"wrote {sum(counts.values())} synthetic shapes ({counts}) in the ShapeNetPart {args.layout} layout to {out}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from .train import PointsConfig, check_config, train, weights_name

    cfg = config_from_args(PointsConfig, args, flag_map={
        **RUN_FLAGS, "mode": "mode", "init": "init", "label_fraction": "label_fraction"})
    check_config(cfg)
    guard = OutputGuard(inputs=[cfg.data, cfg.init or None, getattr(args, "config", None)], force=args.force or cfg.train.resume)
    out = guard.directory(cfg.train.out_dir)
    for name in ("config.yaml", "model.safetensors", weights_name(cfg), "metrics.jsonl", "metrics.csv"):
        guard.file(out / name)
    summary = train(cfg, guard=guard)
    guard.record()
    print(json.dumps(summary, default=str))
    return 0


def cmd_infer(args: argparse.Namespace) -> int:
    from .data import list_inputs, read_cloud_file
    from .infer import discover_parts, label_colours, parse_category, render_png, segment, write_labels, write_ply
    from .model import load_model

    if not 16 <= args.points <= 100_000:
        raise UsageError("--points must be between 16 and 100000")
    if not 1 <= args.max_chunks <= 1000:
        raise UsageError("--max-chunks must be between 1 and 1000")
    if args.parts is not None and not 1 <= args.parts <= 1000:
        raise UsageError("--parts must be between 1 and 1000")
    files = list_inputs(args.inputs)
    stems = [f.stem for f in files]
    if len(set(stems)) != len(stems):
        dup = next(s for s in stems if stems.count(s) > 1)
        raise UsageError(f"two inputs share the name {dup!r}; their outputs would collide")
    category = parse_category(args.category)
    guard = OutputGuard(inputs=[*args.inputs, *files, args.weights], force=args.force)
    out = guard.directory(args.out)
    targets = {f: (guard.file(out / f"{f.stem}_labels.txt"), guard.file(out / f"{f.stem}.ply"),
                   guard.file(out / f"{f.stem}.png")) for f in files}
    clouds = {f: read_cloud_file(f, mesh_points=args.points, seed=args.seed) for f in files}  # bad files fail first
    if args.parts is not None:
        model, _, meta = load_model(_weights(args.weights, SHIPPED_ENCODER), want="encoder")
    else:
        model, _, meta = load_model(_weights(args.weights, SHIPPED_SEGMENTER), want="segmenter")
    trained = json.loads(meta.get("categories", "null")) or list(range(16))
    for f in files:
        cloud = clouds.pop(f)
        if args.parts is not None:
            labels = discover_parts(model, cloud, args.parts, args.points, args.max_chunks, args.seed)
            what = f"{len(set(labels.tolist()))} unsupervised parts (--parts {args.parts})"
        else:
            labels, cat = segment(model, cloud, trained, args.points, args.max_chunks, category)
            from .data import CATEGORIES

            what = f"{CATEGORIES[cat][0]} parts {sorted(set(labels.tolist()))}"
        labels_path, ply_path, png_path = targets[f]
        colours = label_colours(labels - labels.min() if args.parts is None else labels)
        write_labels(labels_path, labels)
        write_ply(ply_path, cloud.points, colours)
        backend = render_png(png_path, cloud.points, colours, f"{printable(f.name)}: {what}", args.render)
        print(f"{f}: {len(labels)} points{' (sampled from the mesh)' if cloud.from_mesh else ''}, {what} "
              f"-> {labels_path}, {ply_path}, {png_path} ({backend})")
    guard.record()
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from .data import read_shapenetpart
    from .evaluate import evaluate_segmenter, format_table, write_json
    from .model import load_model

    guard = OutputGuard(inputs=[args.data, args.weights], force=args.force)
    json_path = guard.file(args.json) if args.json else None
    shapes = read_shapenetpart(args.data, args.split)
    net, _, _ = load_model(_weights(args.weights, SHIPPED_SEGMENTER), want="segmenter")
    result = evaluate_segmenter(net, shapes)
    result.update(split=args.split, data=str(args.data), weights=args.weights or SHIPPED_SEGMENTER)
    print(format_table(result))
    if json_path:
        write_json(result, json_path)
        guard.record()
    return 0


def cmd_probe(args: argparse.Namespace) -> int:
    from .data import read_modelnet40_h5, read_shapenetpart
    from .evaluate import global_features, linear_probe
    from .model import load_model

    guard = OutputGuard(inputs=[args.data, args.weights], force=args.force)
    json_path = guard.file(args.json) if args.json else None
    root = Path(args.data)
    if (root / "train_files.txt").is_file():
        split_data = {s: read_modelnet40_h5(root, s) for s in ("train", "test")}
        from .data import estimate_normals

        encoder, _, _ = load_model(_weights(args.weights, SHIPPED_ENCODER), want="encoder")
        feats = {s: global_features(encoder, list(p), [estimate_normals(q) for q in p]) for s, (p, _) in split_data.items()}
        labels = {s: y for s, (_, y) in split_data.items()}
        layout = "ModelNet40 HDF5"
    else:
        shapes = {s: read_shapenetpart(root, s) for s in ("train", "test")}
        encoder, _, _ = load_model(_weights(args.weights, SHIPPED_ENCODER), want="encoder")
        feats = {s: global_features(encoder, [x.points for x in v], [x.normals for x in v]) for s, v in shapes.items()}
        labels = {s: np.array([x.category for x in v]) for s, v in shapes.items()}
        layout = "ShapeNetPart categories"
    if len(set(labels["train"].tolist())) < 2:
        raise CvsuiteError(f"{root}: the training split has fewer than 2 classes; a probe needs 2 or more")
    acc = linear_probe(feats["train"], labels["train"], feats["test"], labels["test"])
    result = {"accuracy": acc, "train": int(len(labels["train"])), "test": int(len(labels["test"])), "layout": layout,
              "weights": args.weights or SHIPPED_ENCODER}
    print(f"linear probe on frozen features ({layout}): accuracy {100 * acc:.2f} % "
          f"({result['train']} train / {result['test']} test clouds)")
    if json_path:
        write_atomic(json_path, json.dumps(result, indent=2) + "\n")
        guard.record()
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    sub = add_app_parser(subparsers, "points",
                         help="point clouds: self-contrastive pretraining (SCL), part segmentation")

    p = sub.add_parser("synth", help="synthetic ShapeNetPart-style shapes (5 categories) in a real layout")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--layout", choices=("h5", "txt"), default="h5",
                   help="h5 = ply_data_*.h5 + *_hdf5_file_list.txt; txt = the normal-txt benchmark layout")
    p.add_argument("--shapes", type=int, default=500, help="number of shapes (70/10/20 train/val/test)")
    p.add_argument("--points", type=int, default=2048, help="points per shape (default 2048)")
    p.add_argument("--seed", type=int, default=0)
    add_force_arg(p)
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("train", help="pretrain the encoder (SCL / ablations) or fine-tune part segmentation")
    add_run_args(p, data_help="ShapeNetPart folder, either layout (data=)")
    p.add_argument("--mode", choices=("pretrain", "finetune"), help="(mode=)")
    p.add_argument("--init", help="pretrained encoder for fine-tuning (init=)")
    p.add_argument("--label-fraction", type=float, help="fraction of training shapes with labels (label_fraction=)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("infer", help="part labels (or --parts K unsupervised parts) for clouds and meshes")
    p.add_argument("inputs", nargs="+", help=".ply .pcd .xyz .pts .txt clouds, .obj .off .stl .ply .glb meshes, folders")
    p.add_argument("--out", required=True, help="output folder: <stem>_labels.txt, <stem>.ply, <stem>.png")
    p.add_argument("--weights", help="segmenter (or, with --parts, encoder) weights; default: shipped")
    p.add_argument("--points", type=int, default=2048, help="points per network pass / sampled from a mesh")
    p.add_argument("--max-chunks", type=int, default=8, help="network passes per large cloud; the rest by nearest neighbour")
    p.add_argument("--category", help="ShapeNetPart category name or synset (default: the most confident)")
    p.add_argument("--parts", type=int, help="unsupervised part discovery into K parts (no labels needed)")
    p.add_argument("--render", choices=("auto", "open3d", "matplotlib"), default="auto", help="PNG renderer")
    p.add_argument("--seed", type=int, default=0)
    add_force_arg(p)
    p.set_defaults(func=cmd_infer)

    p = sub.add_parser("eval", help="ShapeNetPart instance/class mIoU of a segmenter")
    p.add_argument("--data", required=True, help="ShapeNetPart folder (either layout)")
    p.add_argument("--weights", help="segmenter weights (default: shipped)")
    p.add_argument("--split", default="test", choices=("train", "val", "test"))
    p.add_argument("--json", help="also write the result here")
    add_force_arg(p)
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("probe", help="linear probe on frozen global features (ModelNet40 HDF5 or ShapeNetPart categories)")
    p.add_argument("--data", required=True, help="modelnet40_ply_hdf5_2048 folder or a ShapeNetPart folder")
    p.add_argument("--weights", help="encoder weights (default: shipped SCL encoder)")
    p.add_argument("--json", help="also write the result here")
    add_force_arg(p)
    p.set_defaults(func=cmd_probe)


def doctor() -> dict[str, str]:
    """What ``cvsuite doctor`` reports for this app: which renderer draws the PNGs (``--render auto``)."""
    from .infer import open3d_offscreen_works

    return {"PNG renderer": "open3d offscreen" if open3d_offscreen_works() else
            "matplotlib (open3d's offscreen renderer does not start here)"}


def demo(out_dir: Path, force: bool = False) -> dict[str, Any]:
    """A held-out synthetic chair and table: shipped segmenter labels + unsupervised parts, coloured PLY + PNG."""
    from .data import CATEGORIES, CATEGORY_INDEX, category_parts, read_cloud_file
    from .evaluate import matched_miou, shape_iou
    from .infer import discover_parts, label_colours, render_png, segment, write_labels, write_ply
    from .model import load_model
    from .synth import make_shape

    started = time.perf_counter()
    out_dir = Path(out_dir)
    guard = OutputGuard(force=force)
    guard.directory(out_dir)
    seg, _, meta = load_model(_weights(None, SHIPPED_SEGMENTER), want="segmenter")
    enc, _, _ = load_model(_weights(None, SHIPPED_ENCODER), want="encoder")
    trained = json.loads(meta.get("categories", "null")) or list(range(16))
    result: dict[str, Any] = {}
    rng = np.random.default_rng(20261130)
    for name in ("Chair", "Table"):
        points, normals, parts = make_shape(name, rng, 2048)
        xyz = guard.file(out_dir / f"{name.lower()}.xyz")
        with atomic_output(xyz) as tmp:
            np.savetxt(tmp, np.concatenate([points, normals], 1), fmt="%.6f")
        cloud = read_cloud_file(xyz)
        labels, cat = segment(seg, cloud, trained, 2048, 1)
        write_labels(guard.file(out_dir / f"{name.lower()}_labels.txt"), labels)
        colours = label_colours(labels - labels.min())
        write_ply(guard.file(out_dir / f"{name.lower()}_parts.ply"), cloud.points, colours)
        render_png(guard.file(out_dir / f"{name.lower()}_parts.png"), cloud.points, colours, f"{name}: predicted parts")
        found = discover_parts(enc, cloud, len(np.unique(parts)), 2048, 1)
        render_png(guard.file(out_dir / f"{name.lower()}_unsupervised.png"), cloud.points, label_colours(found),
                   f"{name}: unsupervised parts (k-means on SCL features)")
        result[f"{name.lower()}_category"] = CATEGORIES[cat][0]
        result[f"{name.lower()}_miou"] = shape_iou(labels, parts, category_parts(CATEGORY_INDEX[name]))
        result[f"{name.lower()}_unsupervised_matched_miou"] = matched_miou(found, parts)
    guard.record()
    result["seconds"] = time.perf_counter() - started
    return result

