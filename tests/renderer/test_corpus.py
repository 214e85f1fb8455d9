"""Every file of a corpus of real meshes renders something or is refused in one line."""

from __future__ import annotations

import pytest

from tests.renderer.corpus import ROOT, assimp_opens, corpus_files, walk

# glTF 2.0 files of the corpus that are broken on purpose (assimp's own tests of bad input),
# each with what is wrong; every other glTF 2.0 file must render.
BROKEN_GLTF2 = {
    "glTF2/BoxWithInfinites-glTF-Binary/BoxWithInfinites.glb": "infinite coordinates",
    "glTF2/IncorrectVertexArrays/Cube.gltf": "accessor counts that do not match",
    "glTF2/IndexOutOfRange/AllIndicesOutOfRange.gltf": "indices past the vertices",
    "glTF2/IndexOutOfRange/IndexOutOfRange.gltf": "indices past the vertices",
    "glTF2/MissingBin/BoxTextured.gltf": "its .bin is missing",
    "glTF2/RecursiveNodes/RecursiveNodes.gltf": "a node is its own ancestor",
    "glTF2/SchemaFailures/sceneWrongType.gltf": "a missing .bin",
    "glTF2/wrongTypes/badArray.gltf": "a list that is an object",
}
NOTHING_IN_THEM = {  # valid glTF without a single mesh
    "glTF2/TestNoRootNode/NoScene.gltf",
    "glTF2/TestNoRootNode/SceneWithoutNodes.gltf",
}
POINTS_AND_LINES = {  # valid glTF, but no surface to render
    f"glTF2/glTF-Asset-Generator/Mesh_PrimitiveMode/Mesh_PrimitiveMode_{i:02d}.gltf"
    for i in (0, 1, 2, 3, 7, 8, 9, 10)
}


@pytest.fixture(scope="module")
def outcomes():
    assert ROOT.is_dir(), f"{ROOT} is missing: `scripts/setup.sh --test` installs the corpus"
    return {outcome.file: outcome for outcome in walk(corpus_files())}


def test_every_file_renders_or_is_refused_in_one_line(outcomes, capfd):
    assert len(outcomes) > 400
    for outcome in outcomes.values():
        if not outcome.rendered:
            assert outcome.error and "\n" not in outcome.error, outcome
            assert outcome.error_type != "LoadTimeoutError", outcome  # nothing hangs
            assert "parser crashed" not in outcome.error, outcome  # no worker died
    printed = capfd.readouterr()
    assert "Traceback" not in printed.out + printed.err


def test_every_valid_gltf2_sample_renders(outcomes):
    gltf2 = [f for f in outcomes if f.startswith("glTF2/") and f.endswith((".gltf", ".glb"))]
    expected = set(gltf2) - set(BROKEN_GLTF2) - POINTS_AND_LINES - NOTHING_IN_THEM
    assert len(expected) > 25
    failed = {f: outcomes[f].error for f in expected if not outcomes[f].rendered}
    assert not failed
    for file in BROKEN_GLTF2:
        assert not outcomes[file].rendered, file
    for file in POINTS_AND_LINES:
        assert outcomes[file].error_type == "NoFacesError", outcomes[file]
    for file in NOTHING_IN_THEM:
        assert outcomes[file].error_type == "EmptyMeshError", outcomes[file]


def test_glTF_1_is_named_not_crashed_on(outcomes):
    gltf1 = [o for f, o in outcomes.items() if f.startswith("glTF/") and f.endswith(".gltf")]
    assert gltf1 and all(
        o.error == "glTF 1.0 is not supported; export it as glTF 2.0" for o in gltf1
    )


def test_at_least_80_percent_of_what_assimp_opens_renders(outcomes):
    opened = assimp_opens() & set(outcomes)
    assert len(opened) > 250
    rendered = [f for f in opened if outcomes[f].rendered]
    assert len(rendered) >= 0.8 * len(opened), sorted(opened - set(rendered))
