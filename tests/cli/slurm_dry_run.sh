#!/usr/bin/env bash
# The Slurm batch scripts parse, and outside Slurm their dry-run mode prints the launch lines
# they would use (srun with PMIx, or mpirun inside the allocation), with threads and binding.
# usage: slurm_dry_run.sh <cifar_mpi> <source dir> <data dir>
set -euo pipefail
src="$2"
fail=0
check() {  # description, command output, expected substring
  if [[ "$2" == *"$3"* ]]; then echo "PASS $1"; else echo "FAIL $1: '$3' not in: $2"; fail=1; fi
}
for s in "$src"/jobs/*.sbatch; do
  bash -n "$s" && echo "PASS bash -n $(basename "$s")" || { echo "FAIL bash -n $s"; fail=1; }
done
out=$(env -u SLURM_NTASKS DRY_RUN=1 bash "$src/jobs/train.sbatch" --max-steps 5)
check "train: srun with pmix" "$out" "srun --mpi=pmix --cpu-bind=cores --cpus-per-task=1"
check "train: threads and metrics" "$out" "--threads 1 --metrics $src/results/dryrun/train-0.h5"
check "train: extra args passed" "$out" "--max-steps 5"
check "train: checkpoint per job" "$out" "--checkpoint $src/results/dryrun/checkpoint.h5"
out=$(SLURM_NTASKS=4 SLURM_CPUS_PER_TASK=2 LAUNCHER=mpirun DRY_RUN=1 bash "$src/jobs/train.sbatch")
check "train: mpirun with 2 cores per rank" "$out" "mpirun -np 4 --map-by slot:PE=2 --bind-to core"
check "train: 2 threads" "$out" "--threads 2"
out=$(DRY_RUN=1 bash "$src/jobs/scaling.sbatch")
[[ $(grep -c cifar_mpi <<<"$out") -eq 3 ]] && echo "PASS scaling: three runs" || { echo "FAIL scaling: $out"; fail=1; }
check "scaling: np4 file" "$out" "--metrics $src/results/dryrun/np4.h5"
check "scaling: 4 tasks" "$out" "srun --mpi=pmix --ntasks=4"
exit $fail
