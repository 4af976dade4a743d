"""Cost model of cifar_mpi's data-parallel step: an alpha-beta model of each all-reduce strategy,
fitted to allreduce_bench CSVs, and a step model that predicts a run's training wall time from its
measured compute; then an extrapolation to 8..1024 ranks at 10 and 100 Gbit/s.
Full text, with how to read the plot: docs/cost_model.md.

Modules: common (errors, link labels), fit (alpha-beta fits), bench (allreduce_bench CSVs),
model (the run's tensors, buckets, layer times), runs (metrics files), step_model (bucket comm and
exposed comm per step), extrapolate, report (tables, CSVs), plots, cli.

    tools/cost_model.py SWEEP_DIR                            # bench-*.csv and *.h5 in SWEEP_DIR
    tools/cost_model.py --bench bench-1gbit-np2.csv --bench 10gbit=my.csv \\
                        --metrics run.h5 --metrics runs/ --out OUT_DIR

INPUTS
  Bench CSVs (allreduce_bench --csv FILE), one per link and N (and host layout). Columns used:
  ranks, size_bytes, mpi_time_us, ring_time_us (time per call of a float32 in-place all-reduce of
  size_bytes per rank; rows whose `check` is not "ok" are dropped), and ring_hosts if present (the
  ranks of the ring that crosses the links: H for the hierarchical ring at H hosts x R ranks, else
  N). The link of a file is told by
  its name or by a LINK= prefix:
      bench-<link>-np<N>.csv          e.g. bench-1gbit-np2.csv, bench-100mbit-np4.csv
      bench-<link>-np<N>-rph<R>.csv   R ranks per host, e.g. bench-1gbit-np4-rph2.csv
      --bench LINK=FILE               any file name; N from its `ranks` column
  <link> is a tc rate, <number>kbit|mbit|gbit|tbit (= the link rate in bit/s, as tools/sim_hosts.sh
  --rate takes it), or a label without a rate: `loopback` (all ranks on one host: shared memory),
  `none` (unshaped simulated hosts), anything else. Linkless labels are fitted but have no nominal rate.

  Metrics files (*.h5 of cifar_mpi, docs/metrics.md). Root attributes used: world_size, strategy,
  bucket_mb, overlap, gradient_bytes, batch_per_rank, (buckets, wire_dtype, meta.link_rate,
  meta.hosts, meta.ranks_per_host); datasets steps/t_data, t_comp, t_update, t_wait, epochs/wall;
  and the group model/: tensor_name, tensor_offset, tensor_floats (the gradient tensors in backward
  order), bucket_offset, bucket_floats (the bucket plan as reduced), layer_name, layer_forward,
  layer_backward (per-layer mean times). A file without model/ (an older build) is an error naming
  it, unless --layer-times FILE.h5 names a newer metrics file to borrow tensors and layer times from
  (its buckets are then planned for the old run's bucket_mb by the rule of src/comm/bucket_plan.cpp).
  A run is matched to the bench file of the same link (meta.link_rate; a run on one host, meta.hosts
  = 1 or no meta.link_rate, is `loopback`; --default-link changes the latter), the same N, and the
  same ranks per host (meta.ranks_per_host) if a bench file names it, else the file without -rph
  (else one of another layout, noted in the table). A ring run without a bench file of its N uses
  the link's pooled ring fit (noted); an mpi/naive run without one is skipped with a warning.
  Every strategy's files are read: --allreduce auto is modelled per bucket by the all-reduce it
  ran (model/bucket_algorithm); a run of rhd (or an auto run with rhd buckets) is listed as
  skipped, since the bench fits cover mpi and ring only.

  A directory argument stands for every bench-*-np*.csv and *.h5 in it (not recursive).

MODEL (S = bytes per rank of one all-reduce, N = ranks; times in seconds)
  ring   t(S) = 2(N-1) alpha + 2(N-1)/N S beta       (src/comm/ring_allreduce.cpp: 2(N-1) MPI_Sendrecv
                                                       steps of S/N bytes each)
         hierarchical (R > 1 ranks on each of H hosts, bench column ring_hosts = H): the same with
         H in place of N; the within-host reduce-scatter and all-gather (shared memory) are left out.
  mpi    t(S) = a + b S, fitted per (link, N) as measured. Open MPI 4.1's tuned component picks by N
         and S (coll_tuned_decision_fixed.c, commutative op): N < 4: recursive doubling below 4 KiB
         (and 8-16 KiB), ring up to 64 KiB, segmented ring to 256 KiB, Rabenseifner (reduce-scatter
         + all-gather, ~2 log2(N) alpha + 2(N-1)/N S beta) above; 4 <= N < 8: recursive doubling
         below 8 KiB, Rabenseifner above. At N = 2 every one of these is ~1-2 alpha + S beta, so
         one line is the model; the fit's error columns say how well it holds.
         Beside each fit-based prediction the tool also prints one that uses the bench's measured
         times themselves (log-log interpolation, ring and mpi alike): the difference between the
         two is the error of the alpha-beta line, the rest is the step model's.
  naive  sum over the gradient tensors of t_mpi(tensor bytes)  (one MPI_Allreduce per tensor)
  Fits: least squares of the relative error, min sum_i ln(model(S_i) / t_i)^2 (symmetric: a model
  2x too slow costs what one 2x too fast does; every size counts alike, so small messages matter),
  over the rows with --fit-bytes MIN:MAX; coefficients constrained >= 0. beta is reported as an
  effective rate 8/beta bit/s (for mpi: b = 2(N-1)/N beta_eff, so it compares with the ring's).
  One ring fit per bench file (link, N) and one per link over all its files ("pooled").

  Buckets: each run's own plan (model/bucket_floats, backward order); the layer of a bucket is that
  of its last tensor (a tensor X.weight belongs to layer X). Bytes on the wire = floats x 4 (fp32)
  or x 2 (bf16/fp16: same alpha-beta, half the bytes; the encode/decode is not modelled).

  Step: C = t_data + t_comp + t_update (measured), backward B = f_bwd t_comp, comm c_k per bucket.
    overlap off: T_step = C + sum_k c_k
    overlap on:  bucket k is ready at r_k B after backward starts (r_k: fraction of backward done
                 when the last layer of the bucket has its gradients; the last bucket, which holds
                 conv1, is handed over when backward ends, r = 1); one communication thread:
                 start_k = max(r_k B, end_{k-1}), end_k = start_k + c_k,
                 exposed = max(0, end_last - B),   T_step = C + exposed
  f_bwd and r_k come from the run's per-layer times (model/layer_forward, layer_backward; or
  --layer-times FILE: a metrics file, or the output of build/train_step_bench --per-layer). Predicted wall = sum over the run's steps of T_step, with
  C per step from --compute: max (default: the slowest rank of each step, as a synchronous
  all-reduce makes every rank wait for it), mean (mean over ranks), n1 (the N=1 run's mean step,
  same batch, from the metrics inputs). Measured wall = sum of epochs/wall. Rows off by more than
  --tolerance (20%) are flagged.

  Extrapolation (weak scaling, per-rank batch --batch 128 fixed): T1 = the N=1 run's mean step
  C (steps after the first) or --t-step-ms; tensors and layer times from --layer-times FILE.h5,
  else the N=1 run, else the run of the smallest N; T_N = T1 + exposed comm of the ring at N ranks with
  beta = 8 / link rate (nominal, no protocol overhead) and alpha = the pooled ring alpha of the
  fastest shaped bench link (or --alpha-us), and a "cluster-like" alpha (--cluster-alpha-us 5);
  overlap off: one bucket (the whole gradient, cifar_mpi's default 25 MB bucket); overlap on:
  --extrap-bucket-mb (0.1: for SimpleCnn, buckets fc2+fc1 and conv2+conv1; planned by the rule of
  src/comm/bucket_plan.cpp on the model's tensors). Speedup S(N) = N T1 / T_N (images/s
  relative to one rank), efficiency E = T1 / T_N. The batch at which E = 50% assumes compute linear
  in the batch, C(b) = T1 b / 128 (small batches are in fact less efficient per image, so the real
  threshold is somewhat lower); the link rate at which E = 50% is at the given batch.

OUTPUT (stdout and --out DIR, default: the first directory argument, else the folder of the first
  bench file): cost_model.md (fit, prediction and extrapolation tables), fits.csv (the fitted
  numbers, s and s/byte), predictions.csv (per metrics file), cost_model.png (speedup and
  efficiency vs N), bench_fit.png (bench times and the fitted models). Exit 0; 1 with --strict if a
  prediction is off by more than --tolerance; 2 on bad input, with one line
  "cost_model.py: error: ..." naming the file and what is wrong.
Needs numpy, h5py and matplotlib (Debian: python3-numpy python3-h5py python3-matplotlib).
"""
