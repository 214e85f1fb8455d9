#!/usr/bin/env bash
# Installs everything gmvit needs from nothing: Debian packages with apt-get and the
# Python packages into .venv at the repository root. Safe to run again: it only installs
# what is missing. `scripts/setup.sh --test` adds what the test suite needs.
set -euo pipefail
cd "$(dirname "$0")/.."

# libassimp5: the Open Asset Import Library behind FBX, Collada, Blender, 3DS, ... (pyassimp).
apt_packages=(libosmesa6 libassimp5)
extras=""
if [[ "${1:-}" == "--test" ]]; then
    # assimp-testmodels: the corpus of real files tests/renderer/test_corpus.py walks.
    apt_packages+=(redis-server chromium assimp-testmodels)
    extras="[dev]"
fi

missing=()
for pkg in "${apt_packages[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if ((${#missing[@]})); then
    echo "setup: installing Debian packages: ${missing[*]}"
    sudo_cmd=""
    [[ $(id -u) -ne 0 ]] && sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

python=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
    echo "setup: creating .venv"
    "$python" -m venv .venv
fi

# Reinstall only when the dependency list changed since the last successful setup; a venv
# set up for the tests (a superset) also serves the service.
stamp=".venv/.gmvit-setup${extras}"
wanted=$(sha256sum pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)
current() { [[ -f "$1" && "$(cat "$1")" == "$wanted" ]]; }
if ! current "$stamp" && ! { [[ -z "$extras" ]] && current ".venv/.gmvit-setup[dev]"; }; then
    echo "setup: installing Python packages into .venv"
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e ".${extras}"
    # pyrender pins PyOpenGL 3.1.0, whose OSMesa binding lacks OSMesaCreateContextAttribs.
    .venv/bin/python -m pip install -q --no-deps "PyOpenGL==3.1.10"
    echo "$wanted" > "$stamp"
fi
echo "setup: ready (.venv)"
