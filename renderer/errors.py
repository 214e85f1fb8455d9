"""Typed errors for meshes that cannot become views, each with a message a person can act on.

Every failure of an untrusted file is a `MeshError` (a `ValueError`), so callers can turn
the whole family into one 4xx answer or one CLI line while tests check the exact kind.
"""

from __future__ import annotations


class MeshError(ValueError):
    """A mesh file that cannot be loaded or rendered."""


class UnsupportedFormatError(MeshError):
    """Not a mesh format we read (an image, an archive, random bytes, an unknown name)."""


class MalformedMeshError(MeshError):
    """A recognised format whose content is truncated or garbage, or crashed its parser."""


class NoFacesError(MeshError):
    """Vertices but no faces: a point cloud or a set of lines."""


class EmptyMeshError(MeshError):
    """A file that holds no vertices at all."""


class NonFiniteError(MeshError):
    """NaN or infinite vertex coordinates."""


class BadFaceIndexError(MeshError):
    """A face refers to a vertex the file does not have."""


class DegenerateMeshError(MeshError):
    """All faces have zero area (collapsed to a point or a line), nothing to see."""


class FileTooLargeError(MeshError):
    """More bytes than the size limit, or more memory than the loader may use."""


class TooManyFacesError(MeshError):
    """More faces than the face limit."""


class SceneTooComplexError(MeshError):
    """A scene whose node graph is nested deeper or has more nodes than the limits."""


class LoadTimeoutError(MeshError):
    """Parsing ran past the time limit."""


class CompressedContentError(MeshError):
    """Compressed geometry we cannot decode (e.g. Draco in glTF): refused, never zeros."""


ERRORS_BY_NAME: dict[str, type[MeshError]] = {
    cls.__name__: cls
    for cls in (
        MeshError,
        UnsupportedFormatError,
        MalformedMeshError,
        NoFacesError,
        EmptyMeshError,
        NonFiniteError,
        BadFaceIndexError,
        DegenerateMeshError,
        FileTooLargeError,
        TooManyFacesError,
        SceneTooComplexError,
        LoadTimeoutError,
        CompressedContentError,
    )
}
