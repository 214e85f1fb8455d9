#!/usr/bin/env bash
# The GPU half of the speed numbers, in one short run on a lent GPU machine (see
# ../shared/GPU.md: python3 3.12 with torch + CUDA there, no pyrender, no EGL libraries).
#
# Here, from the repository root (downloads wheels into .whl/ and the EGL Debian packages
# into .gl/, both in .gitignore):
#     bench/gpu.sh --prepare
# There (the device tool, carrying .whl and .gl; results land in $OUT):
#     bash bench/gpu.sh
# It writes: nvidia-smi.txt, tests-gpu.txt (tests/gpu: the Embedder on CUDA in fp32 and
# bf16 against the CPU, EGL views against OSMesa views), render-egl.md (bench.render under
# EGL), models-cuda-fp32.md and models-cuda-bf16.md (bench.models on the GPU).
set -euo pipefail
cd "$(dirname "$0")/.."

# What the GPU machine lacks, for the renderer, the tests and the benches (Python 3.12).
WHEELS=(trimesh pyrender PyOpenGL==3.1.10 pyglet freetype-py six tqdm pytest pluggy iniconfig)
EGL_DEBS=(libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2 libglu1-mesa)

if [[ "${1:-}" == "--prepare" ]]; then
    mkdir -p .whl .gl
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 -d .whl "${WHEELS[@]}"
    (cd .gl && apt-get -qq -oAPT::Architecture=amd64 download "${EGL_DEBS[@]}")
    ls .whl .gl
    exit 0
fi

OUT=${OUT:-gpu-out}
mkdir -p "$OUT"
for deb in .gl/*.deb; do dpkg -x "$deb" /; done
ldconfig
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:$PWD
vendor=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
if [[ -f $vendor && ! -e /usr/share/glvnd/egl_vendor.d/10_nvidia.json ]]; then
    export __EGL_VENDOR_LIBRARY_FILENAMES=$vendor
fi

nvidia-smi >"$OUT/nvidia-smi.txt" 2>&1 || true
# Each step keeps going on failure: the files say what failed, and the others still run.
python3 -m pytest -q -p no:cacheprovider tests/gpu >"$OUT/tests-gpu.txt" 2>&1 || true
PYOPENGL_PLATFORM=egl python3 -m bench.render --calls 5 --real 0 >"$OUT/render-egl.md" 2>&1 || true
python3 -m bench.models --device cuda --repeats 5 >"$OUT/models-cuda-fp32.md" 2>&1 || true
python3 -m bench.models --device cuda --bf16 --repeats 5 >"$OUT/models-cuda-bf16.md" 2>&1 || true
tail -n 3 "$OUT"/*
