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

# Configures and builds (Release) into $CIFAR_BUILD.
cifar_build() {
  cmake -S "$CIFAR_ROOT" -B "$CIFAR_BUILD" -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
  cmake --build "$CIFAR_BUILD" -j "$(nproc)"
}

# Unpacks the data set if an archive is named (CIFAR10_ARCHIVE) or it is already there;
# otherwise says that the tests on the real set will be skipped.
cifar_data() {
  if ! "$CIFAR_ROOT/tools/get_cifar10.sh" --dest "$CIFAR_ROOT/data"; then
    echo "note: CIFAR-10 is not available (set CIFAR10_ARCHIVE=path/to/cifar-10-binary.tar.xz);" \
         "tests on the real data set will be skipped" >&2
    return 1
  fi
}
