#!/usr/bin/env bash
# Installs the Debian 12 packages cifar_mpi needs, by what you are going to do with it.
#
# usage: tools/install_deps.sh [--tests] [--bench] [--list]
#   (none)    building and training: compiler, CMake, Open MPI, oneDNN, HDF5, spdlog, CLI11, toml++; Python 3
#             with h5py, NumPy and Matplotlib for the plots; xz-utils, curl and ca-certificates for
#             tools/get_cifar10.sh to download and unpack CIFAR-10
#   --tests   adds what the whole test suite needs, so that no test skips: GoogleTest, hdf5-tools,
#             clang + libFuzzer + llvm-symbolizer (tools/checks/run_fuzz.sh), Slurm and munge (the
#             one-machine cluster), SimGrid (SMPI), PyTorch (the comparisons with torch, and the
#             unit tests' PyTorch fixture), iproute2 (ip, tc, ss: simulated hosts), procps and bc
#   --bench   adds the PyTorch peer's packages (torch, torchvision, PIL; about 1 GB)
#   --list    prints the packages the flags select, one a line, and installs nothing
# Idempotent: apt runs only when some package is missing (then with sudo unless root).
set -euo pipefail

base=(build-essential g++ cmake openmpi-bin libopenmpi-dev libdnnl-dev libhdf5-dev libspdlog-dev
      libcli11-dev libtomlplusplus-dev python3 python3-h5py python3-numpy python3-matplotlib xz-utils curl ca-certificates)
tests=(libgtest-dev hdf5-tools
       clang libclang-rt-14-dev llvm                # clang + libFuzzer + llvm-symbolizer: tools/checks/run_fuzz.sh
       slurmctld slurmd slurm-client munge          # tools/slurm_cluster.sh, tests/cli/slurm_jobs.sh
       libsimgrid-dev                               # SimGrid SMPI (smpicxx, smpirun): tools/smpi/
       python3-torch                                # tests/cli/torch_steps.py, the unit tests' PyTorch fixture
       iproute2 procps bc)                          # ip, tc, ss (tools/sim_hosts.sh); pgrep, ps; bc
bench=(python3-torch python3-torchvision python3-pil)  # ../shared/bench/pytorch_peer.py
# (Installing slurmctld/slurmd/munge may enable their system services; the one-machine cluster
# does not use them: it runs its own daemons with everything under a temporary folder.)

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }
pkgs=("${base[@]}") list=0
while (($#)); do
  case "$1" in
    --tests) pkgs+=("${tests[@]}") ;;
    --bench) pkgs+=("${bench[@]}") ;;
    --list) list=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install_deps: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done
mapfile -t pkgs < <(printf '%s\n' "${pkgs[@]}" | awk '!seen[$0]++')
if ((list)); then printf '%s\n' "${pkgs[@]}"; exit 0; fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
((${#missing[@]})) || exit 0
sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "install_deps: not root and no sudo; install as root: ${missing[*]}" >&2; exit 1; }
  sudo_cmd=(sudo)
fi
echo "install_deps: installing ${missing[*]}"
"${sudo_cmd[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
