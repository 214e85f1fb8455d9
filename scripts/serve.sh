#!/usr/bin/env bash
# The README's first command: set up everything from nothing, then run the shape service on
# its embedded default (data in ./var, the shipped GMViT-mini, jobs in-process, the
# synthetic demo set indexed on the first start). Arguments go to `gmvit serve`
# (e.g. --host 0.0.0.0 --port 8080); GMVIT_* variables configure the rest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
if [[ -z "${GMVIT_API_KEY:-}" ]]; then
    export GMVIT_API_KEY=dev-key
    echo "serve: GMVIT_API_KEY is not set: writes take the development key 'dev-key'" \
        "(set your own GMVIT_API_KEY before exposing the service)" >&2
fi
export PYOPENGL_PLATFORM="${PYOPENGL_PLATFORM:-osmesa}"
exec .venv/bin/gmvit serve "$@"
