#!/usr/bin/env bash
# The Slurm batch scripts parse, and outside Slurm their dry-run mode prints the launch lines
# they would use (srun with PMIx, or mpirun inside the allocation), with threads and binding, and
# the settings taken from the environment. (tests/cli/slurm_jobs.sh runs them on a real Slurm.)
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
# What tests/cli/slurm_jobs.sh sets through the environment of sbatch.
out=$(CIFAR_BIN=/x/cifar_mpi RESULTS_ROOT=/r TRAIN_ARGS="--epochs 3 --lr 0.1" DRY_RUN=1 bash "$src/jobs/train.sbatch")
check "train: CIFAR_BIN" "$out" " /x/cifar_mpi --config $src/config/default.toml"
check "train: RESULTS_ROOT" "$out" "--metrics /r/dryrun/train-0.h5"
check "train: TRAIN_ARGS from the environment" "$out" "--epochs 3 --lr 0.1"
out=$(TASK_COUNTS="2 8" LAUNCHER=mpirun DRY_RUN=1 bash "$src/jobs/scaling.sbatch")
check "scaling: TASK_COUNTS from the environment" "$out" "mpirun -np 8 --map-by slot:PE=1 --bind-to core"
# More CPUs allocated on the node than it has (tools/slurm_cluster.sh declares 8): no binding.
out=$(SLURM_CPUS_ON_NODE=100000 SLURM_NTASKS=4 LAUNCHER=mpirun DRY_RUN=1 bash "$src/jobs/train.sbatch")
check "train: oversubscribed node, mpirun unbound" "$out" "mpirun -np 4 --map-by slot --bind-to none /"
check "train: oversubscribed node, said why" "$out" "# oversubscribed: 100000 CPUs allocated"
out=$(SLURM_CPUS_ON_NODE=100000 DRY_RUN=1 bash "$src/jobs/train.sbatch")
check "train: oversubscribed node, srun unbound" "$out" "srun --mpi=pmix --cpus-per-task=1 /"
# Resuming on another task count: the global batch is the first run's (per-rank batch x tasks),
# kept in results/<job>/global_batch for the requeued job, whatever its task count.
out=$(SLURM_NTASKS=4 TRAIN_ARGS="--batch-size 32" DRY_RUN=1 bash "$src/jobs/train.sbatch")
check "train: --global-batch = per-rank batch x tasks" "$out" "--global-batch 128"
absent() {  # description, command output, substring that must not be there
  if [[ "$2" != *"$3"* ]]; then echo "PASS $1"; else echo "FAIL $1: '$3' in: $2"; fail=1; fi
}
absent "train: --global-batch replaces --batch-size (cifar_mpi takes one)" "$out" "--batch-size"
check "train: --stall-timeout" "$out" "--stall-timeout 30 "
check "train: --checkpoint-every" "$out" "--checkpoint-every 10s"
out=$(SLURM_NTASKS=4 MIN_RANKS=2 DRY_RUN=1 bash "$src/jobs/train.sbatch")
check "train: MIN_RANKS goes to the recovering launcher" "$out" "--min-ranks 2"
# A --config file's global batch is the run's, at any task count: nothing appended, and the job's
# --config replaces config/default.toml (cifar_mpi takes one --config).
tta="$src/config/time_to_accuracy.toml"
out=$(SLURM_NTASKS=4 TRAIN_ARGS="--config $tta" DRY_RUN=1 bash "$src/jobs/train.sbatch")
check "train: the job's --config" "$out" "--config $tta"
absent "train: --config with a global batch: no --global-batch added" "$out" "--global-batch"
absent "train: --config replaces default.toml" "$out" "default.toml"
out=$(SLURM_NTASKS=4 DRY_RUN=1 bash "$src/jobs/train.sbatch" --config="$tta" --global-batch 512)
[[ $(grep -o -- "--global-batch" <<<"$out" | wc -l) -eq 1 ]] && check "train: --global-batch on the command line wins over the config's" "$out" "--global-batch 512" ||
  { echo "FAIL train: one --global-batch 512 expected: $out"; fail=1; }
# A --config without a global batch: its per-rank batch-size x tasks (here 64 x 4).
gb_root=$(mktemp -d)
printf 'epochs = 1\nbatch-size = 64   # per rank\n' >"$gb_root/per_rank.toml"
out=$(SLURM_NTASKS=4 TRAIN_ARGS="--config $gb_root/per_rank.toml" DRY_RUN=1 bash "$src/jobs/train.sbatch")
check "train: a config's per-rank batch-size x tasks" "$out" "--global-batch 256"
out=$(TRAIN_ARGS="--config $gb_root/none.toml" DRY_RUN=1 bash "$src/jobs/train.sbatch" 2>&1) &&
  { echo "FAIL train: a missing --config file accepted"; fail=1; }
check "train: a missing --config file refused, named" "$out" "--config $gb_root/none.toml: no such file"
rm -rf "$gb_root"
out=$(TRAIN_ARGS="--config $tta" DRY_RUN=1 bash "$src/jobs/scaling.sbatch")
absent "scaling: the job's --config replaces default.toml" "$out" "default.toml"
gb_root=$(mktemp -d); mkdir -p "$gb_root/dryrun"; echo 64 >"$gb_root/dryrun/global_batch"
out=$(SLURM_NTASKS=1 RESULTS_ROOT="$gb_root" SLURM_RESTART_COUNT=1 DRY_RUN=1 bash "$src/jobs/train.sbatch")
rm -rf "$gb_root"
check "train: a requeued job keeps the first run's global batch" "$out" "--global-batch 64"
out=$(LAUNCHER=aprun DRY_RUN=1 bash "$src/jobs/train.sbatch" 2>&1) && { echo "FAIL train: LAUNCHER=aprun accepted"; fail=1; }
check "train: unknown launcher refused" "$out" "LAUNCHER must be srun or mpirun"
exit $fail
