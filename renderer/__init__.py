"""Mesh in, views out: safe loading, normalisation, camera rigs and offscreen rendering."""

from renderer.rigs import RIG_FOR_VIEWS, RIGS, Rig, get_rig

__all__ = ["RIGS", "RIG_FOR_VIEWS", "Rig", "get_rig"]
