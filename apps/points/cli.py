"""``cvsuite points synth|train|infer|eval|probe`` and the points part of ``cvsuite demo``."""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from shared.cli_utils import RUN_FLAGS, add_app_parser, add_force_arg, add_run_args, config_from_args
from shared.errors import CvsuiteError, UsageError, printable
from shared.guard import OutputGuard, atomic_output, write_atomic

SHIPPED_SEGMENTER = "points_segmenter_synth"
UP_CHOICES = ("x", "y", "z")
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


def _infer_outputs(out: Path, f: Path, is_mesh: bool) -> dict[str, Path]:
    """Output paths of one input: labels, coloured cloud, PNG, JSON (+ vertex labels, coloured mesh)."""
    names = {"labels": f"{f.stem}_labels.txt", "ply": f"{f.stem}.ply", "png": f"{f.stem}.png", "json": f"{f.stem}.json"}
    if is_mesh:
        names.update(vertex_labels=f"{f.stem}_vertex_labels.txt", mesh=f"{f.stem}_mesh.ply")
    return {k: out / v for k, v in names.items()}


def cmd_infer(args: argparse.Namespace) -> int:
    from .data import CATEGORIES, list_inputs, read_cloud_file
    from .infer import (category_by_up_axis, discover_parts, label_colours, parse_category, part_names, render_png,
                        segment, vertex_labels, write_labels, write_mesh_ply, write_ply)
    from .model import load_model

    if args.points is not None and not 16 <= args.points <= 100_000:
        raise UsageError("--points must be between 16 and 100000")
    if not 1 <= args.max_chunks <= 1000:
        raise UsageError("--max-chunks must be between 1 and 1000")
    if args.parts is not None and not 1 <= args.parts <= 1000:
        raise UsageError("--parts must be between 1 and 1000")
    if not 0.0 <= args.min_probability <= 1.0:
        raise UsageError("--min-probability must be in [0, 1]")
    files = list_inputs(args.inputs)
    stems = [f.stem for f in files]
    if len(set(stems)) != len(stems):
        dup = next(s for s in stems if stems.count(s) > 1)
        raise UsageError(f"two inputs share the name {dup!r}; their outputs would collide")
    category = parse_category(args.category)
    up_given, args.up = args.up is not None, args.up or "y"
    guard = OutputGuard(inputs=[*args.inputs, *files, args.weights], force=args.force)
    out = guard.directory(args.out)
    mesh_points = args.points or 2048
    clouds = {f: read_cloud_file(f, mesh_points=mesh_points, seed=args.seed) for f in files}  # bad files fail first
    targets = {f: {k: guard.file(p) for k, p in _infer_outputs(out, f, clouds[f].from_mesh).items()} for f in files}
    if args.parts is not None:  # surface-graph parts; an encoder only when --weights names one
        model, meta = (load_model(_weights(args.weights, SHIPPED_ENCODER), want="encoder")[::2] if args.weights
                       else (None, {}))
    else:
        model, _, meta = load_model(_weights(args.weights, SHIPPED_SEGMENTER), want="segmenter")
    trained = json.loads(meta.get("categories", "null")) or list(range(16))
    n_points = args.points or int(json.loads(meta.get("points", "2048")))
    for f in files:
        cloud = clouds.pop(f)
        paths = targets[f]
        record: dict[str, Any] = {"input": str(f), "points": int(len(cloud.points)), "points_per_pass": n_points, "up": args.up,
                                  "sampled_from_mesh": cloud.from_mesh}
        if args.parts is not None:
            labels = discover_parts(cloud, args.parts, args.seed, model, n_points, args.max_chunks)
            names = part_names(labels, None)
            colours = label_colours(labels)
            what = f"{len(names)} unsupervised parts (--parts {args.parts})"
            header = [f"unsupervised parts (--parts {args.parts}): surface-graph spectral features + local shape descriptors"
                      + (f" + encoder {args.weights} on the canonical pose" if args.weights else "")
                      + ", connected Ward clustering; pose-invariant (--up only orients the PNG)"]
        else:
            seg = segment(model, cloud, trained, n_points, args.max_chunks, category, args.up, args.seed)
            labels, cat = seg.labels, seg.category
            names = part_names(labels, cat)
            colours = label_colours(labels, list(names))
            cat_name = CATEGORIES[cat][0]
            what = f"{cat_name} (p={seg.probability:.2f}, {seg.probability_source})"
            header = [f"category {cat_name} probability {seg.probability:.3f} ({seg.probability_source}), up axis {args.up}"]
            record.update(category=cat_name, probability=seg.probability, probability_source=seg.probability_source,
                          category_probabilities={CATEGORIES[c][0]: p for c, p in seg.probabilities.items()})
            other = {}
            if seg.probability_source == "classifier" and not up_given:  # --up not given: check the other axes
                other = category_by_up_axis(model, cloud, trained, n_points, tuple(a for a in UP_CHOICES if a != args.up),
                                            args.seed)
                record["category_by_up_axis"] = {a: {"category": CATEGORIES[c][0], "probability": q}
                                                 for a, (c, q) in other.items()}
            better = {a: cq for a, cq in other.items() if cq[1] > seg.probability and cq[1] >= args.min_probability}
            if better:
                axis, (c_other, p_other) = max(better.items(), key=lambda item: item[1][1])
                print(f"cvsuite: warning: {f}: read y-up it looks like {cat_name} (p={seg.probability:.2f}), but read "
                      f"with --up {axis} like {CATEGORIES[c_other][0]} (p={p_other:.2f}); is the file {axis}-up? pass "
                      f"--up {axis} (or --up y to keep this reading without the check)", file=sys.stderr)
            elif seg.probability_source != "given" and seg.probability < args.min_probability:
                print(f"cvsuite: warning: {f}: category {cat_name} is uncertain (p={seg.probability:.2f} < "
                      f"{args.min_probability}); name it with --category, or check the up axis with --up x|y|z "
                      f"(ShapeNetPart shapes are y-up; now --up {args.up})", file=sys.stderr)
        counts = {int(k): int(v) for k, v in zip(*np.unique(labels, return_counts=True))}
        header.append("part ids: " + ", ".join(f"{k}={n}" for k, n in names.items()))
        record["parts"] = {str(k): {"name": n, "points": counts.get(k, 0)} for k, n in names.items()}
        write_labels(paths["labels"], labels, header)
        write_ply(paths["ply"], cloud.points, colours)
        model_points, _ = cloud.model_input(args.up)
        title = f"{printable(f.name)}: {what}"
        backend = render_png(paths["png"], model_points, colours, title, args.render, labels, names)
        if cloud.from_mesh:
            vlabels = vertex_labels(cloud, labels)
            write_labels(paths["vertex_labels"], vlabels, header + ["one label per mesh vertex, in the file's vertex order"])
            write_mesh_ply(paths["mesh"], cloud.vertices, cloud.faces,
                           label_colours(vlabels, list(names) if args.parts is None else None))
            record["mesh_vertices"] = int(len(vlabels))
        record["outputs"] = {k: str(p) for k, p in paths.items()}
        write_atomic(paths["json"], json.dumps(record, indent=2) + "\n")
        print(f"{f}: {len(labels)} points{' (sampled from the mesh)' if cloud.from_mesh else ''}, {what}, parts "
              + ", ".join(f"{n} {counts[k]}" for k, n in names.items() if k in counts)
              + f" -> {out}/{f.stem}_* ({backend})")
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
        encoder, _, _ = load_model(_weights(args.weights, SHIPPED_ENCODER), want="encoder")
        feats = {s: global_features(encoder, list(p), list(n)) for s, (p, n, _) in split_data.items()}
        labels = {s: y for s, (_, _, y) in split_data.items()}
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

    p = sub.add_parser("train", help="train the Siamese patch net, pretrain the encoder (SCL / ablations) or fine-tune part segmentation")
    add_run_args(p, data_help="ShapeNetPart folder, either layout (data=)")
    p.add_argument("--mode", choices=("siamese", "pretrain", "finetune"),
                   help="siamese (the Siamese patch net SCL needs first), pretrain or finetune (mode=)")
    p.add_argument("--init", help="pretrained encoder for fine-tuning (init=)")
    p.add_argument("--label-fraction", type=float, help="fraction of training shapes with labels (label_fraction=)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("infer", help="part labels (or --parts K unsupervised parts) for clouds and meshes")
    p.add_argument("inputs", nargs="+", help=".ply .pcd .xyz .pts .txt clouds, .obj .off .stl .ply .glb meshes, folders")
    p.add_argument("--out", required=True, help="output folder: <stem>_labels.txt, <stem>.ply, <stem>.png, <stem>.json "
                   "(+ <stem>_vertex_labels.txt, <stem>_mesh.ply for meshes)")
    p.add_argument("--weights", help="segmenter weights (default: shipped); with --parts: an optional SCL "
                   "encoder whose features (on the cloud's canonical pose) join the geometric ones")
    p.add_argument("--points", type=int, help="points per network pass (default: the weights' training cloud size, "
                   "else 2048); a mesh is sampled with this many points (default 2048)")
    p.add_argument("--max-chunks", type=int, default=8, help="network passes per large cloud; the rest by nearest neighbour")
    p.add_argument("--category", help="ShapeNetPart category name or synset (default: the segmenter's category head)")
    p.add_argument("--up", choices=UP_CHOICES,
                   help="the input's up axis (default y, as ShapeNetPart; z for most scans and CAD exports); when "
                        "not given, the category head also reads the cloud x- and z-up and warns if either is "
                        "more confident")
    p.add_argument("--min-probability", type=float, default=0.5,
                   help="warn when the category's probability is below this (default 0.5)")
    p.add_argument("--parts", type=int, help="unsupervised parts: K connected surface regions from pose-invariant "
                   "geometry (spectral features of the kNN surface graph, Ward clustering along it); no labels")
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
    from .infer import discover_parts, label_colours, part_names, render_png, segment, write_labels, write_ply
    from .model import load_model
    from .synth import make_shape

    started = time.perf_counter()
    out_dir = Path(out_dir)
    guard = OutputGuard(force=force)
    guard.directory(out_dir)
    seg, _, meta = load_model(_weights(None, SHIPPED_SEGMENTER), want="segmenter")
    trained = json.loads(meta.get("categories", "null")) or list(range(16))
    result: dict[str, Any] = {}
    rng = np.random.default_rng(20261130)
    for name in ("Chair", "Table"):
        points, normals, parts = make_shape(name, rng, 2048)
        xyz = guard.file(out_dir / f"{name.lower()}.xyz")
        with atomic_output(xyz) as tmp:
            np.savetxt(tmp, np.concatenate([points, normals], 1), fmt="%.6f")
        cloud = read_cloud_file(xyz)
        n_points = int(json.loads(meta.get("points", "2048")))
        result_seg = segment(seg, cloud, trained, n_points, 8)
        labels, cat = result_seg.labels, result_seg.category
        names = part_names(labels, cat)
        write_labels(guard.file(out_dir / f"{name.lower()}_labels.txt"), labels)
        colours = label_colours(labels, list(names))
        write_ply(guard.file(out_dir / f"{name.lower()}_parts.ply"), cloud.points, colours)
        model_points, _ = cloud.model_input()
        render_png(guard.file(out_dir / f"{name.lower()}_parts.png"), model_points, colours,
                   f"{name}: predicted parts", labels=labels, legend=names)
        found = discover_parts(cloud, len(np.unique(parts)))
        render_png(guard.file(out_dir / f"{name.lower()}_unsupervised.png"), model_points, label_colours(found),
                   f"{name}: unsupervised parts (--parts)", labels=found, legend=part_names(found, None))
        result[f"{name.lower()}_category"] = CATEGORIES[cat][0]
        result[f"{name.lower()}_miou"] = shape_iou(labels, parts, category_parts(CATEGORY_INDEX[name]))
        result[f"{name.lower()}_unsupervised_matched_miou"] = matched_miou(found, parts)
    guard.record()
    result["seconds"] = time.perf_counter() - started
    return result

