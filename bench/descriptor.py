"""How good is the descriptor: the same shape found again, real furniture named, unknowns told.

Three parts, measured in one run (`--parts` picks some):

- `instance`: for each mesh of a gallery (held-out synthetic test shapes; real meshes no one
  on the project made, `bench.corpus`), a perturbed copy (`bench.perturb`: noise, rotation,
  subdivision, decimation, mirror; each alone, seeds fixed) queries the gallery of
  originals; top-1 / top-5 = the original is the nearest / among the 5 nearest. Measured
  for the GMViT descriptor (the project's loader, normaliser, renderer and Embedder, as
  the service runs them), for the order `/search` gives (`<model> /search`: the
  descriptor's, its near-ties settled by the views as `app.rerank` settles them, at the
  service's default margin) and for the baselines of `bench.baselines`, on the same meshes.
- `category`: the real furniture of the ten classes through a real `gmvit serve` on
  127.0.0.1: `/classify` top-1 of the head and of the neighbour vote, with the index
  holding the demo set and then the synthetic training set; then the furniture itself
  indexed, and each shape's `/search` ranking (itself left out) scored by category mAP
  and P@10.
- `open-set`: the synthetic held-out families (`gmvit.data.synth.HELD_OUT`) against test
  shapes of the known classes, through the same server: AUROC of the head's top
  probability and of the nearest labelled neighbour's similarity (demo set, training set).

    python -m bench.descriptor --weights W [W ...] [--quick] [--parts ...] [--json F]

Several checkpoints are measured side by side: the instance part renders each copy once
and embeds it with every model; the server part runs once per model. Prints Markdown
tables and writes a JSON (default `var/bench/descriptor-<model ids>.json`). The real
meshes come from Debian packages that `scripts/setup.sh --bench` fetches; the full run's
real gallery is a seeded sample of 400 of them (`--real 0`: all, about three times as
long).
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
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import httpx
import numpy as np
import trimesh
from tqdm import tqdm

import gmvit
import renderer
from app import rerank
from app.pipeline import grid_image
from app.settings import Settings
from bench import baselines, corpus, metrics, perturb
from bench.server import Server, serving
from gmvit.data import synth
from gmvit.evaluate import classification_scores
from gmvit.openset import auroc

REPO = Path(__file__).resolve().parents[1]
PARTS = ("instance", "category", "open-set")
BASELINES = {"pca": "PCA eigenvalues", "pixels": "view pixels", "d2": "D2 histogram"}
PIXEL_RIG, PIXEL_SIZE = "circle-12", baselines.PIXEL_SIZE
# A model's ranking as /search gives it, near-ties settled by the views at this margin.
SEARCH = " /search"
RERANK_MARGIN = Settings.model_fields["rerank_margin"].default
API_KEY = "bench-key"
SEARCH_LIMIT = 100  # the API's largest top_k


@dataclass(frozen=True)
class Sizes:
    synth_per_class: int  # instance gallery: synthetic test shapes per class
    real: int | None  # instance gallery: real meshes (None = all)
    index_per_class: int  # synthetic training shapes indexed for the neighbour vote
    open_per_class: int  # open-set: known test shapes per class and unknowns per family


FULL = Sizes(synth_per_class=30, real=400, index_per_class=112, open_per_class=30)
QUICK = Sizes(synth_per_class=3, real=60, index_per_class=20, open_per_class=4)
SYNTH_TEST_PER_CLASS = 30  # the shipped weights' test split


# ------------------------------------------------------------------ data


def _written_once(folder: Path, write: Callable[[Path], object]) -> Path:
    """`folder`, filled by `write(staging)` and renamed into place the first time: a run
    killed half-way leaves no half folder behind, and two runs at once each write their own
    staging folder (the data is seeded, so whichever lands first is the same)."""
    if not folder.is_dir():
        staging = folder.with_name(f".{folder.name}-{uuid.uuid4().hex[:8]}")
        try:
            write(staging)
            try:
                staging.rename(folder)
            except OSError:
                if not folder.is_dir():
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return folder


def _key(names: Sequence[str]) -> str:
    """The classes and what their families draw now (the first test shape of each), so a
    family that changes gets a new folder instead of the shapes it drew before."""
    digest = hashlib.sha1(",".join(names).encode())
    for name in names:
        mesh = synth.make_shape(name, synth.shape_rng(0, name, "test", 0))
        digest.update(np.asarray(mesh.vertices, dtype=np.float64).tobytes())
    return digest.hexdigest()[:8]


def synth_folder(data_dir: Path, classes: Sequence[str], split: str, per_class: int) -> Path:
    """`<data>/synth/seed0-<_key(classes)>/<split>-<n>/<class>/<split>/*.off`: the first
    `per_class` shapes of each class of seed 0's split (the shipped weights' data)."""
    train = per_class if split == "train" else 0
    return _written_once(
        data_dir / "synth" / f"seed0-{_key(classes)}" / f"{split}-{per_class}",
        lambda staging: synth.generate(
            staging,
            seed=0,
            train_per_class=train,
            test_per_class=per_class - train,
            classes=tuple(classes),
            progress=False,
        ),
    )


def labelled_files(folder: Path) -> list[tuple[Path, str]]:
    """(file, class) of a ModelNet-layout folder, sorted."""
    return [(path, path.relative_to(folder).parts[0]) for path in sorted(folder.rglob("*.off"))]


# ------------------------------------------------------------------ instance retrieval


def _normalised(mesh: trimesh.Trimesh | None) -> trimesh.Trimesh | None:
    if mesh is None:
        return None
    try:
        return renderer.normalize(mesh)
    except renderer.MeshError:  # a copy with no extent left
        return None


def describe_copies(
    copies: Sequence[trimesh.Trimesh | None], embedders: dict[str, gmvit.Embedder]
) -> list[dict[str, np.ndarray] | None]:
    """Each method's vector for each mesh (the baselines', and each model's descriptor
    under its name), computed the way the service sees it: one render per rig and size,
    one embedder batch per model; None for a mesh that is None or cannot be rendered."""
    looks = {(e.rig, e.image_size) for e in embedders.values()} | {(PIXEL_RIG, PIXEL_SIZE)}
    vectors: list[dict[str, np.ndarray] | None] = []
    views: dict[tuple[str, int], list[np.ndarray]] = {look: [] for look in looks}
    for mesh in copies:
        normal = _normalised(mesh)
        if normal is None:
            vectors.append(None)
            continue
        for rig, size in looks:
            views[rig, size].append(renderer.render_views(normal, rig, size))
        vectors.append(
            {
                "pca": baselines.pca_eigenvalues(normal),
                "pixels": baselines.view_pixels(views[PIXEL_RIG, PIXEL_SIZE][-1]),
                "d2": baselines.d2_histogram(normal),
            }
        )
    rendered = [vector for vector in vectors if vector is not None]
    if rendered:
        for name, embedder in embedders.items():
            batch = np.stack(views[embedder.rig, embedder.image_size])
            descriptors = embedder.embed(batch).descriptors
            for vector, descriptor, shape_views in zip(rendered, descriptors, batch, strict=True):
                vector[name] = descriptor
                vector[name + SEARCH] = rerank.view_signature(
                    grid_image(shape_views), len(shape_views)
                )
    return vectors


def _distances(gallery: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """L2 distances (Q, G), through one matrix product (the pixel vectors are long)."""
    g, q = gallery.astype(np.float32), queries.astype(np.float32)
    squared = (q * q).sum(1)[:, None] + (g * g).sum(1)[None, :] - 2.0 * q @ g.T
    return np.sqrt(np.maximum(squared, 0.0))


def search_ranks(
    distances: np.ndarray,
    targets: np.ndarray,
    gallery_signatures: np.ndarray,
    query_signatures: np.ndarray,
    rig: str,
) -> np.ndarray:
    """The rank of each query's target in the order `/search` gives: the descriptor's
    (`distances` between unit descriptors), its near-ties settled by the views."""
    ranks = metrics.target_ranks(distances, targets)
    scores = 1.0 - distances.astype(np.float64) ** 2 / 2.0  # the cosine of unit vectors
    for q, target in enumerate(targets):
        order = np.argsort(-scores[q], kind="stable")[: rerank.CANDIDATES]
        best = list(scores[q, order])
        if not rerank.near_ties(best, RERANK_MARGIN):
            continue  # the descriptor's order: its rank as target_ranks counts it
        settled = rerank.settle_near_ties(
            list(order),
            best,
            RERANK_MARGIN,
            lambda q=q: query_signatures[q],
            lambda tied, order=order: {i: gallery_signatures[order[i]] for i in tied},
            rig,
        )
        if target in settled:
            ranks[q] = settled.index(target)
    return ranks


def instance_retrieval(
    files: Sequence[Path], embedders: dict[str, gmvit.Embedder], seed: int, desc: str
) -> dict:
    """Top-1 / top-5 of every model (its descriptor, and its /search order) and baseline
    under every perturbation, one gallery."""
    n = len(files)
    methods = [*embedders, *(name + SEARCH for name in embedders), *BASELINES]
    gallery: dict[str, list] = {m: [] for m in methods}
    queries = {p: {m: [] for m in methods} for p in perturb.PERTURBATIONS}
    failed: dict[str, list[str]] = {p: [] for p in perturb.PERTURBATIONS}
    for i, path in enumerate(tqdm(files, desc=desc, unit="mesh", leave=False)):
        mesh = renderer.load_mesh(path)
        copies: list[trimesh.Trimesh | None] = [mesh]
        for p_index, change in enumerate(perturb.PERTURBATIONS.values()):
            try:
                copies.append(change(mesh, np.random.default_rng([seed, p_index, i])))
            except ValueError:  # a copy the pipeline cannot take is a miss for every method
                copies.append(None)
        original, *perturbed = describe_copies(copies, embedders)
        if original is None:
            raise RuntimeError(f"{path} cannot be rendered; the corpus should not hold it")
        for method in methods:
            gallery[method].append(original[method])
        for name, vectors in zip(perturb.PERTURBATIONS, perturbed, strict=True):
            if vectors is None:
                failed[name].append(path.name)
            for method in methods:
                queries[name][method].append(None if vectors is None else vectors[method])
    results: dict = {"meshes": n, "perturbations": {}}
    for name in perturb.PERTURBATIONS:
        row = {"failed": failed[name]}
        for method in methods:
            ready = baselines.centred_unit if method == "pixels" else np.asarray
            model = method.removesuffix(SEARCH)
            ok = [i for i, v in enumerate(queries[name][method]) if v is not None]
            ranks = np.full(n, np.inf)  # a copy that failed is a miss at every k
            if ok:
                if method == model:
                    stack = ready(np.stack(gallery[method]))
                    query = ready(np.stack([queries[name][method][i] for i in ok]))
                    ranks[ok] = metrics.target_ranks(_distances(stack, query), np.array(ok))
                else:
                    descriptors = np.stack([queries[name][model][i] for i in ok])
                    ranks[ok] = search_ranks(
                        _distances(np.stack(gallery[model]), descriptors),
                        np.array(ok),
                        np.stack(gallery[method]),
                        np.stack([queries[name][method][i] for i in ok]),
                        embedders[model].rig,
                    )
            row[method] = {"top1": metrics.top_k(ranks, 1), "top5": metrics.top_k(ranks, 5)}
        results["perturbations"][name] = row
    return results


# ------------------------------------------------------------------ through the server


@dataclass
class Answer:
    head: str
    head_probability: float
    answered: bool  # /classify gave a label (not "I don't know")
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
            head=body["probabilities"][0]["label"],  # the head alone, whatever the open set says
            head_probability=body["probabilities"][0]["probability"],
            answered=body["label"] is not None,
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
            threads=1,  # the same answers as more threads, without fighting for 2 cores
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

            def auroc_of(answers: list[Answer], score: str) -> float:
                return auroc(
                    [getattr(a, score) for a in answers[k]],
                    [getattr(a, score) for a in answers[u]],
                )

            results["open_set"] = {
                "known": len(known),
                "unknown": len(unknown),
                "families": sorted({label for _, label in unknown}),
                "head_probability": auroc_of(with_demo, "head_probability"),
                "nearest_demo": auroc_of(with_demo, "nearest_labelled"),
                "nearest_train": auroc_of(with_train, "nearest_labelled"),
                # /classify's own answer, the demo set indexed: the model's thresholds at work
                "known_answered": float(np.mean([a.answered for a in with_demo[k]])),
                "unknown_refused": float(np.mean([not a.answered for a in with_demo[u]])),
            }
    return results


# ------------------------------------------------------------------ report


def instance_table(instance: dict, models: Sequence[str]) -> str:
    searched = [name + SEARCH for name in models]
    methods = [*models, *searched, *BASELINES]
    names = [*models, *searched, *BASELINES.values()]
    lines = [
        "| gallery (meshes) | query: a copy after | "
        + " | ".join(f"{name} top-1 / top-5" for name in names)
        + " |",
        "|---|---|" + "---:|" * len(methods),
    ]
    for gallery, result in instance.items():
        for name, row in result["perturbations"].items():
            cells = " | ".join(f"{row[m]['top1']:.3f} / {row[m]['top5']:.3f}" for m in methods)
            failed = f" ({len(row['failed'])} copies failed)" if row["failed"] else ""
            lines.append(
                f"| {gallery} ({result['meshes']}) | {perturb.DESCRIPTIONS[name]}{failed} "
                f"| {cells} |"
            )
    return "\n".join(lines)


def server_table(models: dict) -> str:
    """Category and open-set scores, one column per model."""
    names = list(models)
    first = models[names[0]]

    def row(title: str, cell) -> str:
        return f"| {title} | " + " | ".join(cell(models[n]) for n in names) + " |"

    def pct(value: float) -> str:
        return f"{100 * value:.1f}"

    lines = ["| measured through `gmvit serve` | " + " | ".join(names) + " |"]
    lines.append("|---|" + "---:|" * len(names))
    if "category" in first:
        c = first["category"]
        lines.append(
            row(
                f"real furniture ({c['meshes']} meshes): `/classify` head top-1 % (class mean)",
                lambda m: (
                    f"{pct(m['category']['head']['oa'])} ({pct(m['category']['head']['macc'])})"
                ),
            )
        )
        for key, what in (("vote_demo", "demo set"), ("vote_train", "synthetic training set")):
            lines.append(
                row(
                    f"... neighbour vote top-1 %, {what} indexed",
                    lambda m, key=key: (
                        f"{pct(m['category'][key]['oa'])} ({pct(m['category'][key]['macc'])})"
                    ),
                )
            )
        lines.append(
            row(
                "real furniture indexed: `/search` category mAP % / P@10 %",
                lambda m: (
                    f"{pct(m['category']['search']['map'])} / "
                    f"{pct(m['category']['search']['p_at_10'])}"
                ),
            )
        )
    if "open_set" in first:
        o = first["open_set"]
        lines.append(
            row(
                f"open set ({o['known']} known against {o['unknown']} held-out): AUROC of "
                "the head's top probability",
                lambda m: f"{m['open_set']['head_probability']:.3f}",
            )
        )
        for key, what in (("nearest_demo", "demo set"), ("nearest_train", "training set")):
            lines.append(
                row(
                    f"... of the nearest labelled neighbour's similarity, {what} indexed",
                    lambda m, key=key: f"{m['open_set'][key]:.3f}",
                )
            )
        lines.append(
            row(
                "/classify with the model's thresholds: known shapes labelled / held-out "
                "shapes answered null",
                lambda m: "{known_answered:.2f} / {unknown_refused:.2f}".format(**m["open_set"]),
            )
        )
    lines.append(
        row(
            "shapes indexed: demo set / training set",
            lambda m: "{demo} / {train}".format(**m["index"]),
        )
    )
    return "\n".join(lines)


def furniture_table(category: dict) -> str:
    per_class = category["per_class"]
    return "\n".join(
        [
            "| class | " + " | ".join(per_class) + " |",
            "|---|" + "---:|" * len(per_class),
            "| real meshes | " + " | ".join(str(v) for v in per_class.values()) + " |",
            "| head right | "
            + " | ".join(str(category["head_right_per_class"][k]) for k in per_class)
            + " |",
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


def _fail(message: object) -> None:
    print(f"bench: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def main(argv: Sequence[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--weights",
        type=Path,
        nargs="+",
        default=[REPO / "weights/gmvit-mini-synth10.pt"],
        help="one or more checkpoints, measured side by side on the same copies",
    )
    parser.add_argument("--quick", action="store_true", help="subsets: a few minutes")
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument("--real", type=int, help="real meshes in the instance gallery (0: all)")
    parser.add_argument("--seed", type=int, default=0, help="perturbations and subsets")
    parser.add_argument("--data", type=Path, default=corpus.DEFAULT_DATA, help="bench data")
    parser.add_argument("--json", type=Path, default=None, help="where to write the results")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    if args.real is not None:
        sizes = replace(sizes, real=args.real or None)
    started = time.monotonic()
    os.environ.setdefault("PYOPENGL_PLATFORM", "osmesa")

    try:
        corpus_dir, manifest = corpus.load(args.data)
        checkpoints = {}
        for path in args.weights:
            checkpoint = gmvit.load_checkpoint(path)
            checkpoints[checkpoint.model_id] = (path, checkpoint)
    except (corpus.MissingDataError, gmvit.GMViTError, OSError) as error:
        _fail(error)
    if len(checkpoints) < len(args.weights):
        _fail("the same model was given twice")
    models = list(checkpoints)
    # The synthetic gallery and the known classes come from the first model's classes.
    classes = list(checkpoints[models[0]][1].class_names)
    try:
        synth_test = labelled_files(synth_folder(args.data, classes, "test", SYNTH_TEST_PER_CLASS))
    except ValueError as error:  # a class the synthetic set has no family for
        _fail(error)
    real = [corpus_dir / m["file"] for m in manifest["meshes"]]
    furniture = corpus.furniture_files(corpus_dir, manifest)
    results: dict = {
        "weights": {name: str(path) for name, (path, _) in checkpoints.items()},
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
        embedders = {name: gmvit.Embedder(c, threads=1) for name, (_, c) in checkpoints.items()}
        galleries = {
            "synthetic test": [p for p, _ in _per_class(synth_test, sizes.synth_per_class)],
            "real": _sample(real, sizes.real, args.seed),
        }
        results["instance"] = {
            name: instance_retrieval(files, embedders, args.seed, name)
            for name, files in galleries.items()
        }
    if "category" in args.parts or "open-set" in args.parts:
        results["models"] = {}
        for name, (path, checkpoint) in checkpoints.items():
            own = list(checkpoint.class_names)
            own_test = (
                synth_test
                if own == classes
                else labelled_files(synth_folder(args.data, own, "test", SYNTH_TEST_PER_CLASS))
            )
            results["models"][name] = through_server(
                path,
                args.data,
                corpus_dir,
                furniture,
                _per_class(own_test, sizes.open_per_class),
                labelled_files(
                    synth_folder(args.data, synth.HELD_OUT, "test", sizes.open_per_class)
                ),
                synth_folder(args.data, own, "train", sizes.index_per_class),
                own,
                args.parts,
            )
    results["wall_s"] = round(time.monotonic() - started, 1)

    command = "python -m bench.descriptor " + " ".join(sys.argv[1:] if argv is None else argv)
    print(
        f"{', '.join(models)}; {'quick' if args.quick else 'full'} run, seed {args.seed}, "
        f"{results['wall_s']:.0f} s: `{command.strip()}`\n"
    )
    if "instance" in results:
        print(instance_table(results["instance"], models) + "\n")
    if "models" in results:
        print(server_table(results["models"]) + "\n")
        first = results["models"][models[0]]
        if "category" in first:
            print(
                f"{models[0]}, real furniture per class:\n\n{furniture_table(first['category'])}\n"
            )
    out = args.json or REPO / "var" / "bench" / f"descriptor-{'-'.join(models)}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"written: {out}")
    return results


if __name__ == "__main__":
    main()
