#!/usr/bin/env bash
# Installs the Debian 12 packages cifar_mpi builds, tests and plots with.
# Idempotent: skips apt entirely when every package is already installed.
# Usage: tools/install_deps.sh [--bench]   (--bench adds PyTorch for the peer benchmark, ~1 GB)
set -euo pipefail
pkgs=(build-essential cmake g++ openmpi-bin libopenmpi-dev libdnnl-dev libhdf5-dev libspdlog-dev
      libgtest-dev libcli11-dev python3 python3-h5py python3-matplotlib python3-numpy xz-utils hdf5-tools
      clang libclang-rt-14-dev llvm  # clang + libFuzzer + llvm-symbolizer: tools/run_fuzz.sh
      slurmctld slurmd slurm-client munge  # tools/slurm_cluster.sh, tests/cli/slurm_jobs.sh
      libsimgrid-dev)  # SimGrid SMPI (smpicxx, smpirun): tools/smpi_allreduce.sh, tests/cli/smpi_allreduce.sh
# (Installing slurmctld/slurmd/munge may enable their system services; the one-machine cluster
# does not use them: it runs its own daemons with everything under a temporary folder.)
[[ "${1:-}" == "--bench" ]] && pkgs+=(python3-torch python3-torchvision python3-pil)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo_cmd=(); [[ $(id -u) -ne 0 ]] && sudo_cmd=(sudo)
  echo "install_deps: installing ${missing[*]}"
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
