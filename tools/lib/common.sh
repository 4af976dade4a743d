# Sourced by the tools/ scripts: repository root, build folder, MPI launch flags, and the Python
# that runs the tools' package (tools/cifar_tools).
# shellcheck shell=bash
CIFAR_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CIFAR_BUILD="${CIFAR_BUILD:-$CIFAR_ROOT/build}"
# Debian's python3 has python3-h5py, -numpy and -matplotlib; a pyenv python3 first on PATH may
# not, so it is named by path. CIFAR_PYTHON=... picks another (on a machine without Debian's).
if [[ -z ${CIFAR_PYTHON:-} ]]; then
  if [[ -x /usr/bin/python3 ]]; then CIFAR_PYTHON=/usr/bin/python3; else CIFAR_PYTHON=python3; fi
fi

# cifar_tools MODULE ARGS...: runs python3 -m cifar_tools.MODULE ARGS (tools/cifar_tools/MODULE.py).
cifar_tools() {
  PYTHONPATH="$CIFAR_ROOT/tools${PYTHONPATH:+:$PYTHONPATH}" "$CIFAR_PYTHON" -m "cifar_tools.$1" "${@:2}"
}

# Open MPI refuses to start as root unless told; containers and CI often run as root.
if [[ $(id -u) -eq 0 ]]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi

# cifar_build [-DVAR=VALUE...] [--target NAME...]: configures (Release, with the -D settings) and
# builds $CIFAR_BUILD (everything, or the targets named).
cifar_build() {
  local configure=() build=()
  while (($#)); do
    case $1 in
      --target) build+=(--target "$2"); shift 2 ;;
      *) configure+=("$1"); shift ;;
    esac
  done
  cmake -S "$CIFAR_ROOT" -B "$CIFAR_BUILD" -DCMAKE_BUILD_TYPE=Release ${configure+"${configure[@]}"} >/dev/null
  cmake --build "$CIFAR_BUILD" -j "$(nproc)" ${build+"${build[@]}"}
}

# cifar_data: CIFAR-10 in data/cifar-10-batches-bin: the archive CIFAR10_ARCHIVE names, else the
# data already there, else the official archive downloaded (tools/get_cifar10.sh checks it). If
# none of that works, one more line says what to do, and it returns 1.
cifar_data() {
  "$CIFAR_ROOT/tools/get_cifar10.sh" --dest "$CIFAR_ROOT/data" && return 0
  echo "error: CIFAR-10 is not in data/ and could not be provided (see the line above); with no" \
       "network, set CIFAR10_ARCHIVE=path/to/cifar-10-binary.tar.xz (or .tar.gz) to use a local archive" >&2
  return 1
}

# cifar_usage: prints the comment block at the top of the calling script (its --help).
cifar_usage() {
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[1]}"
}
