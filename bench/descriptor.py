"""How good is the descriptor: the same shape found again, real furniture named, unknowns told.

Three parts, measured on one checkpoint in one run (`--parts` picks some):

- `instance`: for each mesh of a gallery (held-out synthetic test shapes; real meshes no one
  on the project made, `bench.corpus`), a perturbed copy (`bench.perturb`: noise, rotation,
  subdivision, decimation, mirror; each alone, seeds fixed) queries the gallery of
  originals; top-1 / top-5 = the original is the nearest / among the 5 nearest. Measured
  for the GMViT descriptor (the project's loader, normaliser, renderer and Embedder, as
  the service runs them) and for the baselines of `bench.baselines`, on the same meshes.
- `category`: the real furniture of the ten classes through a real `gmvit serve` on
  127.0.0.1: `/classify` top-1 of the head and of the neighbour vote, with the index
  holding the demo set and then the synthetic training set; then the furniture itself
  indexed, and each shape's `/search` ranking (itself left out) scored by category mAP
  and P@10.
- `open-set`: held-out synthetic families (`bench.held_out`) against test shapes of the
  known classes, through the same server: AUROC of the head's top probability and of the
  nearest labelled neighbour's similarity (demo set, training set).

    python -m bench.descriptor --weights weights/gmvit-mini-synth10.pt [--quick] [--json F]

Prints Markdown tables and writes a JSON (default `var/bench/descriptor-<model id>.json`).
The real meshes come from Debian packages that `scripts/setup.sh --bench` fetches.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
import numpy as np
import trimesh
from tqdm import tqdm

import gmvit
import renderer
from bench import baselines, corpus, held_out, metrics, perturb
from bench.server import Server, serving
from gmvit.data import synth
from gmvit.evaluate import classification_scores

REPO = Path(__file__).resolve().parents[1]
PARTS = ("instance", "category", "open-set")
METHODS = ("gmvit", "pca", "pixels", "d2")
METHOD_NAMES = {
    "gmvit": "GMViT descriptor",
    "pca": "PCA eigenvalues",
    "pixels": "view pixels",
    "d2": "D2 histogram",
}
PIXEL_RIG = "circle-12"
API_KEY = "bench-key"
SEARCH_LIMIT = 100  # the API's largest top_k


@dataclass(frozen=True)
class Sizes:
    synth_per_class: int  # instance gallery: synthetic test shapes per class
    real: int | None  # instance gallery: real meshes (None = all)
    index_per_class: int  # synthetic training shapes indexed for the neighbour vote
    open_per_class: int  # open-set: known test shapes per class and unknowns per family


FULL = Sizes(synth_per_class=30, real=None, index_per_class=112, open_per_class=30)
QUICK = Sizes(synth_per_class=3, real=60, index_per_class=20, open_per_class=4)
SYNTH_TEST_PER_CLASS = 30  # the shipped weights' test split


# ------------------------------------------------------------------ data


def synth_folder(data_dir: Path, classes: Sequence[str], split: str, per_class: int) -> Path:
    """`<data>/synth/<classes>/<split>-<n>/<class>/<split>/*.off`: the first `per_class`
    shapes of each class of seed 0's split (the shipped weights' data), written once."""
    key = hashlib.sha1(",".join(classes).encode()).hexdigest()[:8]
    folder = data_dir / "synth" / f"seed0-{key}" / f"{split}-{per_class}"
    if not folder.is_dir():
        staging = folder.with_name(f".{folder.name}-staging")
        shutil.rmtree(staging, ignore_errors=True)
        counts = (
            {"train": per_class, "test": 0} if split == "train" else {"train": 0, "test": per_class}
        )
        synth.generate(
            staging,
            seed=0,
            train_per_class=counts["train"],
            test_per_class=counts["test"],
            classes=tuple(classes),
            progress=False,
        )
        staging.rename(folder)
    return folder


def held_out_folder(data_dir: Path, per_family: int) -> Path:
    key = hashlib.sha1(",".join(held_out.families()).encode()).hexdigest()[:8]
    folder = data_dir / "synth" / f"held-out-{key}" / f"test-{per_family}"
    if not folder.is_dir():
        staging = folder.with_name(f".{folder.name}-staging")
        shutil.rmtree(staging, ignore_errors=True)
        held_out.generate(staging, per_family)
        staging.rename(folder)
    return folder


def labelled_files(folder: Path) -> list[tuple[Path, str]]:
    """(file, class) of a ModelNet-layout folder, sorted."""
    return [(path, path.relative_to(folder).parts[0]) for path in sorted(folder.rglob("*.off"))]


# ------------------------------------------------------------------ instance retrieval


def describe_copies(
    copies: Sequence[trimesh.Trimesh | None], embedder: gmvit.Embedder
) -> list[dict[str, np.ndarray] | None]:
    """Every method's vector for each mesh, computed the way the service sees it (one
    embedder batch for all); None for a mesh that is None or that cannot be rendered."""
    vectors: list[dict[str, np.ndarray] | None] = []
    views = []
    for mesh in copies:
        try:
            if mesh is None:
                raise ValueError("no copy")
            normal = renderer.normalize(mesh)
        except ValueError:  # renderer.MeshError is one
            vectors.append(None)
            continue
        views.append(renderer.render_views(normal, embedder.rig, embedder.image_size))
        same = embedder.rig == PIXEL_RIG and embedder.image_size == baselines.PIXEL_SIZE
        pixels = (
            views[-1] if same else renderer.render_views(normal, PIXEL_RIG, baselines.PIXEL_SIZE)
        )
        vectors.append(
            {
                "pca": baselines.pca_eigenvalues(normal),
                "pixels": baselines.view_pixels(pixels),
                "d2": baselines.d2_histogram(normal),
            }
        )
    if views:
        descriptors = iter(embedder.embed(np.stack(views)).descriptors)
        for vector in vectors:
            if vector is not None:
                vector["gmvit"] = next(descriptors)
    return vectors


def _distances(gallery: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """L2 distances (Q, G), through one matrix product (the pixel vectors are long)."""
    g, q = gallery.astype(np.float32), queries.astype(np.float32)
    squared = (q * q).sum(1)[:, None] + (g * g).sum(1)[None, :] - 2.0 * q @ g.T
    return np.sqrt(np.maximum(squared, 0.0))


def instance_retrieval(
    files: Sequence[Path], embedder: gmvit.Embedder, seed: int, desc: str
) -> dict:
    """Top-1 / top-5 of every method under every perturbation, for one gallery."""
    n = len(files)
    gallery: dict[str, list] = {m: [] for m in METHODS}
    queries = {p: {m: [] for m in METHODS} for p in perturb.PERTURBATIONS}
    failed: dict[str, list[str]] = {p: [] for p in perturb.PERTURBATIONS}
    for i, path in enumerate(tqdm(files, desc=desc, unit="mesh", leave=False)):
        mesh = renderer.load_mesh(path)
        copies: list[trimesh.Trimesh | None] = [mesh]
        for p_index, change in enumerate(perturb.PERTURBATIONS.values()):
            try:
                copies.append(change(mesh, np.random.default_rng([seed, p_index, i])))
            except ValueError:  # a copy the pipeline cannot take is a miss for every method
                copies.append(None)
        original, *perturbed = describe_copies(copies, embedder)
        if original is None:
            raise RuntimeError(f"{path} cannot be rendered; the corpus should not hold it")
        for method in METHODS:
            gallery[method].append(original[method])
        for name, vectors in zip(perturb.PERTURBATIONS, perturbed, strict=True):
            if vectors is None:
                failed[name].append(path.name)
            for method in METHODS:
                queries[name][method].append(None if vectors is None else vectors[method])
    results: dict = {"meshes": n, "perturbations": {}}
    for name in perturb.PERTURBATIONS:
        row = {"failed": failed[name]}
        for method in METHODS:
            ready = baselines.centred_unit if method == "pixels" else np.asarray
            stack = ready(np.stack(gallery[method]))
            ok = [i for i, v in enumerate(queries[name][method]) if v is not None]
            ranks = np.full(n, np.inf)  # a copy that failed is a miss at every k
            if ok:
                query = ready(np.stack([queries[name][method][i] for i in ok]))
                ranks[ok] = metrics.target_ranks(_distances(stack, query), np.array(ok))
            row[method] = {"top1": metrics.top_k(ranks, 1), "top5": metrics.top_k(ranks, 5)}
        results["perturbations"][name] = row
    return results


# ------------------------------------------------------------------ through the server


@dataclass
class Answer:
    head: str
    head_probability: float
    vote: str | None
    nearest_labelled: float  # cosine similarity of the nearest labelled shape, -1 if none


def classify_all(server: Server, files: Sequence[Path], desc: str) -> list[Answer]:
    """POST /classify for every file (two at a time: the server's two render threads)."""

    def one(client: httpx.Client, path: Path) -> Answer:
        response = client.post(
            "/classify", files={"file": (path.name, path.read_bytes())}, data={"top_k": 5}
        )
        response.raise_for_status()
        body = response.json()
        shapes = body["neighbors"]["shapes"]
        return Answer(
            head=body["label"],
            head_probability=body["probabilities"][0]["probability"],
            vote=body["neighbors"]["label"],
            nearest_labelled=shapes[0]["score"] if shapes else -1.0,
        )

    with httpx.Client(base_url=server.url, timeout=300) as client, ThreadPoolExecutor(2) as pool:
        jobs = pool.map(lambda path: one(client, path), files)
        return list(tqdm(jobs, total=len(files), desc=desc, unit="mesh", leave=False))


def _accuracy(predicted: Sequence[str | None], truth: Sequence[str], classes: list[str]) -> dict:
    """Top-1 over all meshes and its mean over the classes present (gmvit eval's scores)."""
    index = {name: i for i, name in enumerate(classes)}
    unknown = {label for label in predicted if label not in index}
    if unknown:
        raise RuntimeError(f"answers outside the model's classes: {sorted(map(str, unknown))}")
    oa, macc, _ = classification_scores(
        np.array([index[label] for label in predicted]),
        np.array([index[label] for label in truth]),
        len(classes),
    )
    return {"oa": oa, "macc": macc}


def search_scores(server: Server, classes: Sequence[str]) -> dict:
    """Every indexed shape queries the index (itself left out): category mAP and P@10 of
    its full ranking, assembled from one `/search` per class (each class fits one page)."""
    shapes, offset = [], 0
    while True:
        page = httpx.get(
            f"{server.url}/shapes", params={"offset": offset, "limit": 1000}, timeout=60
        ).json()
        shapes += page["shapes"]
        offset += len(page["shapes"])
        if offset >= page["total"] or not page["shapes"]:
            break
    label_of = {shape["id"]: shape["label"] for shape in shapes}
    sizes = {c: sum(1 for s in shapes if s["label"] == c) for c in classes}
    if max(sizes.values()) > SEARCH_LIMIT:
        raise RuntimeError(f"a class has more than {SEARCH_LIMIT} shapes: {sizes}")
    aps, p10s = [], []
    with httpx.Client(base_url=server.url, timeout=60) as client:
        for shape in tqdm(shapes, desc="search", unit="query", leave=False):
            hits = []
            for label in classes:
                response = client.post(
                    "/search",
                    data={"shape_id": shape["id"], "top_k": SEARCH_LIMIT, "label": label},
                )
                response.raise_for_status()
                hits += response.json()["results"]
            hits.sort(key=lambda hit: -hit["score"])
            relevant = [label_of[hit["id"]] == shape["label"] for hit in hits]
            if any(relevant):
                aps.append(metrics.average_precision(relevant))
            p10s.append(metrics.precision_at(relevant, 10))
    return {"map": float(np.mean(aps)), "p_at_10": float(np.mean(p10s)), "queries": len(shapes)}


def through_server(
    weights: Path,
    data_dir: Path,
    corpus_dir: Path,
    furniture: list[tuple[Path, str]],
    known: list[tuple[Path, str]],
    unknown: list[tuple[Path, str]],
    train_folder: Path,
    classes: list[str],
    parts: Sequence[str],
) -> dict:
    """The category and open-set parts, on one server: demo index, then the synthetic
    training set, then the real furniture."""
    results: dict = {}
    category, open_set = "category" in parts, "open-set" in parts
    files = (furniture if category else []) + (known + unknown if open_set else [])
    paths = [path for path, _ in files]
    with (
        tempfile.TemporaryDirectory(prefix="gmvit-bench-") as tmp,
        serving(
            Path(tmp) / "var",
            weights=weights.resolve(),
            api_key=API_KEY,
            allowed_roots=data_dir.resolve(),
            demo="true",
            workers=2,
            queue=32,
        ) as server,
    ):
        server.wait_for_job()
        ready = httpx.get(f"{server.url}/readyz", timeout=10).json()
        demo_shapes = ready["shapes"]
        with_demo = classify_all(server, paths, "classify (demo index)")
        server.reindex(train_folder)
        train_shapes = httpx.get(f"{server.url}/readyz", timeout=10).json()["shapes"]
        with_train = classify_all(server, paths, "classify (training set indexed)")
        results["head_repeatable"] = [a.head for a in with_demo] == [a.head for a in with_train]
        results["model_id"] = ready["model_id"]
        results["index"] = {"demo": demo_shapes, "train": train_shapes}
        if category:
            n = len(furniture)
            truth = [label for _, label in furniture]
            per_class = {c: truth.count(c) for c in classes if c in truth}
            head_right = {
                c: sum(a.head == c for a, t in zip(with_demo[:n], truth, strict=True) if t == c)
                for c in per_class
            }
            results["category"] = {
                "meshes": n,
                "per_class": per_class,
                "head_right_per_class": head_right,
                "head": _accuracy([a.head for a in with_demo[:n]], truth, classes),
                "vote_demo": _accuracy([a.vote for a in with_demo[:n]], truth, classes),
                "vote_train": _accuracy([a.vote for a in with_train[:n]], truth, classes),
            }
            server.reindex(corpus_dir / "furniture")
            results["category"]["search"] = search_scores(server, list(per_class))
        if open_set:
            start = len(furniture) if category else 0
            k = slice(start, start + len(known))
            u = slice(start + len(known), len(paths))

            def auroc(answers: list[Answer], score: str) -> float:
                return metrics.auroc(
                    [getattr(a, score) for a in answers[k]],
                    [getattr(a, score) for a in answers[u]],
                )

            results["open_set"] = {
                "known": len(known),
                "unknown": len(unknown),
                "families": sorted({label for _, label in unknown}),
                "head_probability": auroc(with_demo, "head_probability"),
                "nearest_demo": auroc(with_demo, "nearest_labelled"),
                "nearest_train": auroc(with_train, "nearest_labelled"),
            }
    return results


# ------------------------------------------------------------------ report


def instance_table(instance: dict) -> str:
    head = "| gallery | perturbation | " + " | ".join(
        f"{METHOD_NAMES[m]} top-1 | top-5" for m in METHODS
    )
    lines = [head + " |", "|---|---|" + "---:|---:|" * len(METHODS)]
    for gallery, result in instance.items():
        for name, row in result["perturbations"].items():
            cells = " | ".join(f"{row[m]['top1']:.3f} | {row[m]['top5']:.3f}" for m in METHODS)
            failed = f" ({len(row['failed'])} copies failed)" if row["failed"] else ""
            lines.append(
                f"| {gallery} ({result['meshes']}) | {perturb.DESCRIPTIONS[name]}{failed} | "
                f"{cells} |"
            )
    return "\n".join(lines)


def category_table(category: dict, index: dict) -> str:
    pct = lambda x: f"{100 * x:.1f}"  # noqa: E731
    c = category
    lines = [
        f"| real furniture ({c['meshes']} meshes, {len(c['per_class'])} classes) | top-1 % "
        "| mean class top-1 % |",
        "|---|---:|---:|",
        f"| `/classify` head label | {pct(c['head']['oa'])} | {pct(c['head']['macc'])} |",
        f"| `/classify` neighbour vote, demo set indexed ({index['demo']} shapes) | "
        f"{pct(c['vote_demo']['oa'])} | {pct(c['vote_demo']['macc'])} |",
        f"| `/classify` neighbour vote, synthetic training set indexed ({index['train']} "
        f"shapes) | {pct(c['vote_train']['oa'])} | {pct(c['vote_train']['macc'])} |",
        "",
        "| real furniture indexed, each shape queries the others | mAP % | P@10 % |",
        "|---|---:|---:|",
        f"| `/search` by shape id, category relevance | {pct(c['search']['map'])} | "
        f"{pct(c['search']['p_at_10'])} |",
        "",
        "| class | " + " | ".join(c["per_class"]) + " |",
        "|---|" + "---:|" * len(c["per_class"]),
        "| real meshes | " + " | ".join(str(v) for v in c["per_class"].values()) + " |",
        "| head right | "
        + " | ".join(str(c["head_right_per_class"][k]) for k in c["per_class"])
        + " |",
    ]
    return "\n".join(lines)


def open_set_table(open_set: dict, index: dict) -> str:
    o = open_set
    return "\n".join(
        [
            f"| open set: {o['known']} known-class test shapes against {o['unknown']} of "
            f"held-out families ({', '.join(o['families'])}) | AUROC |",
            "|---|---:|",
            f"| head's top probability | {o['head_probability']:.3f} |",
            f"| nearest labelled neighbour's similarity, demo set ({index['demo']}) | "
            f"{o['nearest_demo']:.3f} |",
            f"| nearest labelled neighbour's similarity, training set ({index['train']}) | "
            f"{o['nearest_train']:.3f} |",
        ]
    )


# ------------------------------------------------------------------ main


def _sample(items: list, count: int | None, seed: int) -> list:
    if count is None or count >= len(items):
        return items
    keep = np.random.default_rng(seed).choice(len(items), size=count, replace=False)
    return [items[i] for i in sorted(keep)]


def _per_class(files: list[tuple[Path, str]], count: int) -> list[tuple[Path, str]]:
    seen: dict[str, int] = {}
    kept = []
    for path, label in files:
        seen[label] = seen.get(label, 0) + 1
        if seen[label] <= count:
            kept.append((path, label))
    return kept


def main(argv: Sequence[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, default=REPO / "weights/gmvit-mini-synth10.pt")
    parser.add_argument("--quick", action="store_true", help="subsets: a few minutes")
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument("--seed", type=int, default=0, help="perturbations and subsets")
    parser.add_argument("--data", type=Path, default=corpus.DEFAULT_DATA, help="bench data")
    parser.add_argument("--json", type=Path, default=None, help="where to write the results")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    started = time.monotonic()
    os.environ.setdefault("PYOPENGL_PLATFORM", "osmesa")

    try:
        corpus_dir, manifest = corpus.load(args.data)
        checkpoint = gmvit.load_checkpoint(args.weights)
    except (corpus.MissingDataError, gmvit.GMViTError, OSError) as error:
        print(f"bench: error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    classes = list(checkpoint.class_names)
    try:
        synth_test = labelled_files(synth_folder(args.data, classes, "test", SYNTH_TEST_PER_CLASS))
    except ValueError as error:  # a class the synthetic set has no family for
        print(f"bench: error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    real = [corpus_dir / m["file"] for m in manifest["meshes"]]
    furniture = corpus.furniture_files(corpus_dir, manifest)
    results: dict = {
        "weights": str(args.weights),
        "model_id": checkpoint.model_id,
        "quick": args.quick,
        "seed": args.seed,
        "sizes": asdict(sizes),
        "corpus": {
            "packages": manifest["packages"],
            "meshes": len(real),
            "furniture": corpus.class_counts(manifest),
        },
    }
    if "instance" in args.parts:
        # One torch thread: the machine's other core renders, and more threads only fight.
        embedder = gmvit.Embedder(checkpoint, threads=1)
        galleries = {
            "synthetic test": [p for p, _ in _per_class(synth_test, sizes.synth_per_class)],
            "real": _sample(real, sizes.real, args.seed),
        }
        results["instance"] = {
            name: instance_retrieval(files, embedder, args.seed, name)
            for name, files in galleries.items()
        }
    if "category" in args.parts or "open-set" in args.parts:
        known = _per_class(synth_test, sizes.open_per_class)
        unknown = labelled_files(held_out_folder(args.data, sizes.open_per_class))
        train_folder = synth_folder(args.data, classes, "train", sizes.index_per_class)
        results.update(
            through_server(
                args.weights,
                args.data,
                corpus_dir,
                furniture,
                known,
                unknown,
                train_folder,
                classes,
                args.parts,
            )
        )
    results["wall_s"] = round(time.monotonic() - started, 1)

    command = "python -m bench.descriptor " + " ".join(argv if argv is not None else sys.argv[1:])
    print(
        f"{checkpoint.model_id} ({args.weights}), {'quick' if args.quick else 'full'} run, "
        f"seed {args.seed}, {results['wall_s']:.0f} s: `{command.strip()}`\n"
    )
    if "instance" in results:
        print(instance_table(results["instance"]) + "\n")
    if "category" in results:
        print(category_table(results["category"], results["index"]) + "\n")
    if "open_set" in results:
        print(open_set_table(results["open_set"], results["index"]) + "\n")
    out = args.json or REPO / "var" / "bench" / f"descriptor-{checkpoint.model_id}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"written: {out}")
    return results


if __name__ == "__main__":
    main()
