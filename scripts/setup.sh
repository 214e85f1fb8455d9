#!/usr/bin/env bash
# Installs everything gmvit needs from nothing: Debian packages with apt-get and the
# Python packages into .venv at the repository root. Safe to run again: it only installs
# what is missing. `scripts/setup.sh --test` adds what the test suite needs; `--bench`
# adds that and the real meshes `python -m bench.descriptor` measures on (Debian packages
# of other people's models, unpacked under var/bench-data/debian/, never installed).
set -euo pipefail
cd "$(dirname "$0")/.."

apt_packages=(libosmesa6)
extras=""
bench_packages=()
for arg in "$@"; do
    case "$arg" in
        --test) apt_packages+=(redis-server chromium) extras="[dev]" ;;
        --bench)
            apt_packages+=(redis-server chromium) extras="[dev]"
            bench_packages=(sweethome3d-furniture sweethome3d libcgal-demo assimp-testmodels)
            ;;
        *) echo "setup: unknown option $arg (use --test or --bench)" >&2 && exit 2 ;;
    esac
done

sudo_cmd=""
[[ $(id -u) -ne 0 ]] && sudo_cmd="sudo"
missing=()
for pkg in "${apt_packages[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if ((${#missing[@]})); then
    echo "setup: installing Debian packages: ${missing[*]}"
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
# Data packages are downloaded and unpacked, not installed: only their files are needed,
# not their dependencies (a Java runtime, CGAL's headers).
bench_debs=var/bench-data/debian
for pkg in "${bench_packages[@]}"; do
    [[ -f "$bench_debs/$pkg/VERSION" ]] && continue
    echo "setup: fetching the bench's real meshes: $pkg"
    mkdir -p "$bench_debs/.download"
    # (as root, apt warns that its sandbox user cannot write here: harmless, hidden)
    if ! (cd "$bench_debs/.download" && apt-get download -qq "$pkg" 2>/dev/null); then
        $sudo_cmd apt-get update -qq  # an old or missing package list
        (cd "$bench_debs/.download" && apt-get download -qq "$pkg")
    fi
    deb=$(ls "$bench_debs/.download/${pkg}_"*.deb)
    rm -rf "$bench_debs/$pkg"
    dpkg-deb -x "$deb" "$bench_debs/$pkg"
    dpkg-deb -f "$deb" Version > "$bench_debs/$pkg/VERSION"
    rm -f "$deb"
done
((${#bench_packages[@]})) && rmdir "$bench_debs/.download" 2>/dev/null || true
echo "setup: ready (.venv)"
