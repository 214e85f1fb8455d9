"""Near-ties of the descriptor settled by the views: signatures of real renders, the settling
rule on small fakes, and `/search` through the real app ordering its near-ties by the
thumbnails it stored."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh
from fastapi.testclient import TestClient

import renderer
from app import rerank
from app.main import create_app
from app.pipeline import grid_image, grid_png
from gmvit.data import synth
from gmvit.data.datasets import mirror_order, turn_orders
from tests.app.conftest import WRITE, make_settings, off_bytes

RIG = "circle-12"
CLASSES = ("chair", "table", "monitor", "sofa", "bed", "toilet", "desk", "bathtub")


def _views(class_name: str, seed: int) -> np.ndarray:
    mesh = renderer.normalize(synth.make_shape(class_name, np.random.default_rng(seed)))
    return renderer.render_views(mesh, RIG, 48)


def _signature(views: np.ndarray) -> np.ndarray:
    return rerank.view_signature(grid_image(views), len(views))


def test_a_shape_and_its_stored_thumbnail_give_the_same_signature() -> None:
    views = _views("chair", 1)
    assert np.array_equal(_signature(views), rerank.view_signature(grid_png(views), len(views)))


def test_a_turned_or_mirrored_copy_is_nearer_to_itself_than_another_shape_is() -> None:
    views, other = _views("chair", 1), _views("chair", 2)
    turned = views[turn_orders(RIG)[4]]
    mirrored = views[mirror_order(RIG)][:, :, ::-1]
    gallery = _signature(views)
    for copy in (turned, mirrored):
        poses = rerank.poses(_signature(copy), RIG)
        assert rerank.view_similarity(poses, gallery) == pytest.approx(1.0, abs=1e-5)
        assert rerank.view_similarity(poses, _signature(other)) < 0.99


def test_only_candidates_within_the_margin_of_the_best_are_settled() -> None:
    scores = [0.9990, 0.9986, 0.9981, 0.9900, 0.9899]
    assert rerank.near_ties(scores, 0.001) == [0, 1, 2]
    assert rerank.near_ties(scores, 0.0) == []
    assert rerank.near_ties(scores[:1], 0.5) == []
    assert rerank.near_ties([0.9, 0.7], 0.001) == []  # one alone is no tie

    rng = np.random.default_rng(0)
    query = rng.uniform(0, 255, (12, rerank.SIGNATURE_PX**2)).astype(np.float32)
    unlike = rng.uniform(0, 255, query.shape).astype(np.float32)
    hits = ["a", "b", "c", "d", "e"]
    poses = rerank.poses(query, RIG)
    # "c" shows the query's views; "b" has no thumbnail and keeps its place; "d" is out of
    # the margin and keeps its place even though its views are the query's too.
    signatures = {0: unlike, 2: query.copy(), 3: query.copy()}
    settled = rerank.settle(hits, rerank.near_ties(scores, 0.001), poses, signatures)
    assert settled == ["c", "b", "a", "d", "e"]
    assert rerank.settle(hits, [], poses, signatures) == hits


def test_search_orders_near_ties_by_the_views_of_the_stored_thumbnails(
    tmp_path, tiny_weights
) -> None:
    meshes = {
        name: synth.make_shape(name, np.random.default_rng(seed))
        for seed, name in enumerate(CLASSES)
    }
    # Every candidate counts as tied: the order of the best ten is the views' order alone.
    settings = make_settings(tmp_path, tiny_weights, rerank_margin=2.0)
    with TestClient(create_app(settings)) as client:
        ids = {}
        for name, mesh in meshes.items():
            added = client.post(
                "/shapes", files={"file": (f"{name}.off", off_bytes(mesh))}, headers=WRITE
            )
            assert added.status_code == 201, added.text
            ids[name] = added.json()["id"]

        def signature(shape_id: int) -> np.ndarray:
            png = client.get(f"/shapes/{shape_id}/thumbnail.png").content
            return rerank.view_signature(png, 12)

        by_id = client.post("/search", data={"shape_id": ids["chair"], "top_k": 10}).json()
        hits = [hit["id"] for hit in by_id["results"]]
        assert sorted(hits) == sorted(i for name, i in ids.items() if name != "chair")
        poses = rerank.poses(signature(ids["chair"]), RIG)
        similarity = [rerank.view_similarity(poses, signature(i)) for i in hits]
        assert similarity == sorted(similarity, reverse=True)

        # A copy of the table turned a quarter turn about +Z finds the table first.
        turned = meshes["table"].copy()
        turned.apply_transform(trimesh.transformations.rotation_matrix(np.pi / 2, (0, 0, 1)))
        query = client.post(
            "/search", files={"file": ("q.off", off_bytes(turned))}, data={"top_k": 3}
        )
        assert query.status_code == 200, query.text
        assert query.json()["results"][0]["id"] == ids["table"]
