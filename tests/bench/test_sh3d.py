"""Reading Sweet Home 3D catalogs and naming their pieces' classes."""

import numpy as np
import pytest

from bench import sh3d


def test_properties_comments_continuations_and_escapes():
    text = (
        "# a comment\n"
        "! another\n"
        "name#1=Armchair\n"
        "name#2 = Table \\\n"
        "    lamp\n"
        "name#3:Caf\\u00e9 table\n"
        "path\\:with\\=colon=/a/b.obj\n"
        "trailing=ends in a backslash\\\\\n"
        "next=kept\n"
    )
    pairs = sh3d.read_properties(text)
    assert pairs["name#1"] == "Armchair"
    assert pairs["name#2"] == "Table lamp"
    assert pairs["name#3"] == "Café table"
    assert pairs["path:with=colon"] == "/a/b.obj"
    assert pairs["trailing"] == "ends in a backslash\\"
    assert pairs["next"] == "kept"


def test_catalog_pieces_read_sizes_models_and_rotations():
    pieces = sh3d.catalog_pieces(
        {
            "name#2": "Sofa",
            "model#2": "/m/sofa.obj",
            "width#2": "200",
            "depth#2": "90",
            "height#2": "80",
            "modelRotation#2": "1 0 0 0 0 1 0 -1 0",
            "name#1": "Chair",
            "model#1": "/m/chair.obj",
            "name#3": "A light without a model",
        }
    )
    assert [p.name for p in pieces] == ["Chair", "Sofa"]
    assert pieces[0].rotation is None and pieces[0].model == "m/chair.obj"
    assert pieces[1].size_cm == (200.0, 90.0, 80.0)
    assert np.array_equal(pieces[1].rotation, [[1, 0, 0], [0, 0, 1], [0, -1, 0]])


@pytest.mark.parametrize(
    ("name", "label"),
    [
        ("Bath", "bathtub"),
        ("Corner bathtub", "bathtub"),
        ("Bathmat", None),
        ("Bunk bed", "bed"),
        ("Bed 140x190", "bed"),
        ("Bedside table", "night_stand"),
        ("Armchair", "chair"),
        ("Oak chair", "chair"),
        ("Wheelchair", None),
        ("Deck chair", None),
        ("Bar stool", None),
        ("Desk", "desk"),
        ("Desk table", "desk"),
        ("Desk lamp", None),
        ("Chest", "dresser"),
        ("Dresser with drawers", "dresser"),
        ("Chest freezer", None),
        ("Flat TV", "monitor"),
        ("Apple iMac 1998", "monitor"),
        ("TV unit", None),
        ("Corner sofa", "sofa"),
        ("Futon couch", "sofa"),
        ("Opened convertible sofa BZ", None),
        ("Coffee table", "table"),
        ("Pool table", None),
        ("Table fan", None),
        ("Toilets unit", "toilet"),
        ("Toilet paper dispenser", None),
        ("Washbasin", None),
    ],
)
def test_class_rules(name, label):
    assert sh3d.piece_class(name) == label


def test_our_frame_is_z_up_front_plus_y_standing_on_zero():
    # Sweet Home 3D: y up, front +z. A post at the back (-z) reaching up to y = 2.
    vertices = np.array([[-1.0, 0, -1], [1, 0, 1], [0, 2, -1], [0.5, 1, 0]])
    ours = sh3d.to_our_frame(vertices, None)
    assert ours[:, 2].min() == 0.0 and ours[:, 2].max() == 2.0  # up is z
    assert ours[2, 1] < 0  # the back is -y
    assert np.allclose(ours[:, :2].min(axis=0), -ours[:, :2].max(axis=0))  # centred
    assert np.linalg.det(sh3d.SH3D_TO_OURS) == pytest.approx(1.0)  # no mirror
    # a model saved z-up, turned y-up by its modelRotation, ends z-up here too
    z_up = vertices[:, [0, 2, 1]] * (1, -1, 1)
    rotation = np.array([[1.0, 0, 0], [0, 0, 1], [0, -1, 0]])
    assert np.allclose(sh3d.to_our_frame(z_up, rotation), ours)
