#!/usr/bin/env bash
# One-step setup of pcseg on a fresh machine.
#
#   scripts/setup.sh            # creates .venv and installs everything
#
# Steps (each prints "==> step" and the script stops with the reason if one fails):
#   1. system packages (OpenBLAS for MinkowskiEngine, libusb/Vulkan for Open3D) via apt, if missing
#   2. .venv with torch 2.14.1 + torchvision 0.29.1 (pinned in scripts/constraints.txt)
#   3. nerfstudio 1.1.5 (pins numpy<2, timm 0.6.7, pulls open3d)
#   4. pcseg itself, editable, with its test extras
#   5. open_clip + timm>=1.0.17 in a second pip call (nerfstudio never imports timm; see README)
#   6. MinkowskiEngine 0.5.4 from the PyPI sdist: built once, wheel cached under
#      $PCSEG_CACHE_DIR/wheels keyed by torch version, CUDA/CPU and Python version
#
# Environment knobs:
#   PCSEG_VENV       where the venv goes (default: <repo>/.venv)
#   PCSEG_CACHE_DIR  wheel cache (default: ~/.cache/pcseg)
#   PCSEG_ME_BUILD   auto | cpu | cuda | skip   (default auto: CUDA if torch sees a GPU, else CPU)
#   PCSEG_SKIP_NERF=1  skip nerfstudio (the point-cloud side does not need it)
#   PCSEG_SKIP_APT=1   never call apt-get (install the system packages yourself)
#
# A second run with an up-to-date .venv only verifies the install (seconds).
set -Eeuo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${PCSEG_VENV:-$ROOT/.venv}"
CACHE="${PCSEG_CACHE_DIR:-$HOME/.cache/pcseg}"
ME_BUILD="${PCSEG_ME_BUILD:-auto}"
CONSTRAINTS="$ROOT/scripts/constraints.txt"
ME_VERSION=0.5.4
ME_SDIST_URL="https://files.pythonhosted.org/packages/21/5c/c543c4bc5fbe73ac3e38465b3da4f24a61f7a4ac5baec867e582e94aa551/MinkowskiEngine-0.5.4.tar.gz"
ME_SDIST_SHA256=b1879c00d0b0b1d30ba622cce239886a7e3c78ee9da1064cdfe2f64c2ab15f94
STEP="start"
T0=$SECONDS

step() { STEP="$*"; echo "==> [$((SECONDS - T0))s] $*"; }
die() { echo "setup.sh: FAILED during '$STEP': $*" >&2; exit 1; }
trap 'die "command \"$BASH_COMMAND\" exited with status $? (line $LINENO)"' ERR

# ---------------------------------------------------------------- 0. stamp check
STAMP="$VENV/.pcseg-setup-stamp"
stamp_value() {
  cat "$ROOT/pyproject.toml" "$CONSTRAINTS" "$ROOT/scripts/setup.sh" | sha256sum | cut -c1-16
  echo "me=$ME_BUILD nerf=${PCSEG_SKIP_NERF:-0}"
}
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$(stamp_value)" ]]; then
  step "verifying existing environment $VENV"
  "$VENV/bin/python" "$ROOT/scripts/check_env.py" && { echo "setup.sh: up to date ($((SECONDS - T0))s)"; exit 0; }
  echo "setup.sh: verification failed, reinstalling"
fi

# ---------------------------------------------------------------- 1. system packages
need_apt=()
for pkg in libopenblas-dev libusb-1.0-0 libvulkan1 mesa-vulkan-drivers libgl1 libegl1 libgomp1; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if ((${#need_apt[@]})); then
  if [[ "${PCSEG_SKIP_APT:-0}" == 1 ]]; then
    echo "setup.sh: warning: missing system packages ${need_apt[*]} (PCSEG_SKIP_APT=1, not installing)"
  else
    step "apt-get install ${need_apt[*]}"
    SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
    $SUDO apt-get update -qq || die "apt-get update failed (no network to the Debian mirror?)"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null \
      || die "apt-get install ${need_apt[*]} failed"
  fi
fi

# ---------------------------------------------------------------- 2. venv + torch
step "virtual environment at $VENV"
[[ -x "$VENV/bin/python" ]] || python3 -m venv "$VENV" || die "python3 -m venv failed (need Python >= 3.10 with venv)"
PY="$VENV/bin/python"
PIP=(pip_install)
# pip prints one warning per missing local index folder on this kind of machine: keep the log readable.
# (`|| true`: grep exits 1 when it has nothing to print, and the ERR trap, inherited by the process
# substitution under `set -E`, would report a spurious "FAILED" line.)
pip_install() {
  "$PY" -m pip install --disable-pip-version-check -q -c "$CONSTRAINTS" "$@" \
    2> >(grep -v "is ignored: it is neither a file nor a directory" >&2 || true)
}
"$PY" -c 'import sys; assert sys.version_info >= (3, 10), sys.version' || die "Python >= 3.10 required"

step "torch 2.14.1 + torchvision 0.29.1"
"${PIP[@]}" "torch==2.14.1" "torchvision==0.29.1" || die "could not install torch 2.14.1 / torchvision 0.29.1"

# ---------------------------------------------------------------- 3. nerfstudio
if [[ "${PCSEG_SKIP_NERF:-0}" != 1 ]]; then
  step "nerfstudio 1.1.5"
  "${PIP[@]}" "nerfstudio==1.1.5" || die "could not install nerfstudio 1.1.5"
fi

# ---------------------------------------------------------------- 4. pcseg
step "pcseg (editable) with test extras"
"${PIP[@]}" -e "$ROOT[test]" || die "could not install pcseg from $ROOT"

# ---------------------------------------------------------------- 5. open_clip / timm
# A separate call on purpose: co-resolving with nerfstudio makes pip pick nerfstudio 0.3.2
# or open_clip 2.x + timm 0.6.7. nerfstudio 1.1.5 never imports timm, so this is safe.
step "open_clip_torch + timm>=1.0.17"
"${PIP[@]}" "timm>=1.0.17" "open_clip_torch>=2.24" || die "could not install open_clip_torch / timm"

# ---------------------------------------------------------------- 6. MinkowskiEngine
TORCH_TAG=$("$PY" -c 'import torch; print(torch.__version__.replace("+", "_"))')
PY_TAG=$("$PY" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')
HAS_CUDA=$("$PY" -c 'import torch; print(int(torch.cuda.is_available()))')
case "$ME_BUILD" in
  auto) [[ "$HAS_CUDA" == 1 ]] && ME_FLAVOUR=cuda || ME_FLAVOUR=cpu ;;
  cpu|cuda) ME_FLAVOUR=$ME_BUILD ;;
  skip) ME_FLAVOUR=skip ;;
  *) die "PCSEG_ME_BUILD must be auto, cpu, cuda or skip (got '$ME_BUILD')" ;;
esac

build_me() {  # $1 = cpu|cuda ; writes the wheel into $2
  local flavour=$1 out=$2 src
  src=$(mktemp -d)
  step "building MinkowskiEngine $ME_VERSION ($flavour) from the sdist: ~7-15 min on 2 cores, cached afterwards"
  curl -fsSL "$ME_SDIST_URL" -o "$src/me.tar.gz" || die "could not download $ME_SDIST_URL"
  echo "$ME_SDIST_SHA256  $src/me.tar.gz" | sha256sum -c --quiet - || die "MinkowskiEngine sdist checksum mismatch"
  tar xzf "$src/me.tar.gz" -C "$src"
  "${PIP[@]}" wheel ninja || die "could not install the build tools"
  local flags=(--blas=openblas)
  [[ "$flavour" == cpu ]] && flags+=(--cpu_only) || flags+=(--force_cuda)
  # setup.py runs "rm -rf build" and "pip uninstall MinkowskiEngine" on import: run it in its own dir.
  (cd "$src/MinkowskiEngine-$ME_VERSION" && PATH="$VENV/bin:$PATH" MAX_JOBS="${MAX_JOBS:-2}" \
      "$PY" setup.py -q bdist_wheel "${flags[@]}" -d "$out" >"$src/build.log" 2>&1) || {
    tail -n 40 "$src/build.log" >&2
    return 1
  }
  rm -rf "$src"
}

if [[ "$ME_FLAVOUR" != skip ]]; then
  WHEEL_DIR="$CACHE/wheels/minkowskiengine-$ME_VERSION-$PY_TAG-torch$TORCH_TAG-$ME_FLAVOUR"
  if ! ls "$WHEEL_DIR"/*.whl >/dev/null 2>&1; then
    mkdir -p "$WHEEL_DIR.tmp"
    if ! build_me "$ME_FLAVOUR" "$WHEEL_DIR.tmp"; then
      rm -rf "$WHEEL_DIR.tmp"
      if [[ "$ME_FLAVOUR" == cuda ]]; then
        # Upstream 0.5.4 needs unreleased source patches for CUDA >= 12; the pure-torch backend runs
        # on CUDA anyway, so fall back to a CPU build of MinkowskiEngine rather than leave none.
        echo "setup.sh: WARNING: the CUDA build of MinkowskiEngine failed (see the log above);" \
             "building it CPU-only. pcseg's torch backend still runs on the GPU." >&2
        ME_FLAVOUR=cpu
        WHEEL_DIR="$CACHE/wheels/minkowskiengine-$ME_VERSION-$PY_TAG-torch$TORCH_TAG-cpu"
        mkdir -p "$WHEEL_DIR.tmp"
        build_me cpu "$WHEEL_DIR.tmp" || die "MinkowskiEngine CPU build failed (log above)"
      else
        die "MinkowskiEngine build failed (log above). Set PCSEG_ME_BUILD=skip to install without it."
      fi
    fi
    rm -rf "$WHEEL_DIR" && mv "$WHEEL_DIR.tmp" "$WHEEL_DIR"   # atomic publish of the cache entry
  else
    step "MinkowskiEngine $ME_VERSION: cached wheel $(ls "$WHEEL_DIR"/*.whl)"
  fi
  "${PIP[@]}" --no-deps --force-reinstall "$WHEEL_DIR"/*.whl || die "could not install the MinkowskiEngine wheel"
fi

# ---------------------------------------------------------------- 7. verify
step "verifying the environment"
"$PY" "$ROOT/scripts/check_env.py" || die "the installed environment does not import (see above)"
stamp_value >"$STAMP"
echo "setup.sh: done in $((SECONDS - T0))s. Activate with: source $VENV/bin/activate"
