"""Benchmarks (`python -m bench.NAME`): speed as ratios measured in one run, and the
descriptor's quality (`bench.descriptor`) on synthetic and real meshes."""
