#pragma once
// The one configuration struct of a run. Defaults live in config/default.toml; every key is also
// a command-line option of the same name (CLI11 reads both), and the command line wins.
// The options table (config_options(), src/app/config.cpp) is the one list of the options: the
// command line, the TOML keys, --help, docs/reference.md, config_items, the cross-rank agreement
// and the checkpoint identity are all made from it. A new option is a member here and a row there.
// One boolean dialect: a switch is the pair --name / --no-name, and name = true|false in TOML
// (the spellings from before are rewritten with a warning: legacy_spellings.hpp).
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "cifar_mpi/comm/allreduce_strategy.hpp"
#include "cifar_mpi/comm/wire_dtype.hpp"
#include "cifar_mpi/data/augment.hpp"
#include "cifar_mpi/model/conv_algo.hpp"
#include "cifar_mpi/optim/lr_schedule.hpp"

namespace CLI {
class App;
}

namespace cifar {

// --compress: what the gradients travel as beyond their wire type.
enum class Compression { none, powersgd };
inline std::string to_string(Compression c) { return c == Compression::powersgd ? "powersgd" : "none"; }

// The step from which --compress / --local-sgd take over: the option's value, or for auto (-1) a
// tenth of the first epoch (rounded up).
inline size_t start_step(long long option, size_t steps_per_epoch) {
  return option >= 0 ? static_cast<size_t>(option) : (steps_per_epoch + 9) / 10;
}

struct Config {
  // data
  std::string data_dir = "data/cifar-10-batches-bin";
  std::string model = "simplecnn";  // a name of the model catalog (model_catalog.hpp)
  bool sync_bn = false;  // BatchNorm over the global batch (else each rank's share, as DDP)
  bool shuffle = true;       // a new order each epoch (recorded as no_shuffle: see the table)
  bool drop_last = false;
  // training
  int epochs = 1;
  size_t batch_size = 128;   // per rank
  size_t global_batch = 0;   // if set: split across ranks instead (must divide by N)
  size_t micro_batch = 0;    // images per forward/backward pass (0: the rank's whole batch)
  // How a step's images are split between the ranks: static (rank r takes its own 1/N, the same
  // every run) or dynamic (the ranks of one host draw them in chunks: a slowed rank takes fewer).
  enum class Balance { fixed, dynamic } balance = Balance::fixed;
  float lr = 0.01f;
  float momentum = 0.9f;
  uint64_t seed = 42;
  int threads = 1;           // oneDNN/OpenMP threads per process
  long max_steps = 0;        // 0: whole epochs
  bool eval = true;          // test accuracy after each epoch
  int log_every = 50;        // steps between progress lines (rank 0)
  // learning-rate policy and regularisation (optim/lr_schedule.hpp, sgd_momentum.hpp: PyTorch's semantics)
  LrScheduleKind lr_schedule = LrScheduleKind::constant;
  double warmup_epochs = 0;  // linear warm-up (not with onecycle, which has its own)
  LrScaling lr_scaling = LrScaling::none;  // of --lr, against a global batch of 128
  size_t lr_step_epochs = 0; // step schedule: decay every this many epochs
  double lr_gamma = 0.1;     // step schedule: decay factor
  float weight_decay = 0;    // coupled L2, as torch.optim.SGD
  bool nesterov = false;
  Augment augment = Augment::none;  // random crop (4-pixel zero padding) + horizontal flip
  // time to accuracy
  double target_accuracy = 0;  // stop every rank at the first evaluation that reaches it (0: none)
  long eval_every = 0;         // also evaluate every K steps (0: at the end of each epoch only)
  // weights
  std::string init_weights;
  std::string save_weights;
  // communication
  AllreduceStrategy allreduce = AllreduceStrategy::mpi;
  double bucket_mb = 0;      // 0: auto (planned from the timed backward and the link: reduction_plan.hpp)
  bool overlap = false;
  bool overlap_trial = true;  // --overlap: keep it only if the first steps show it shortens the step
  RingLayout ring_layout = RingLayout::hosts;
  WireDtype wire_dtype = WireDtype::fp32;  // what gradients travel as: fp32 | bf16 | fp16
  std::string link_model;  // alpha-beta per all-reduce from allreduce_bench --fit-out ("" = probe at start-up)
  // sending less (comm/powersgd.hpp, comm/model_averaging.hpp)
  Compression compress = Compression::none;  // none | powersgd
  size_t compress_rank = 4;                  // PowerSGD's rank (clamped to each matrix's min(rows, cols))
  long long compress_start = -1;             // plain all-reduce for this many steps first (-1: auto)
  size_t local_sgd = 0;                      // average the weights every K steps instead of gradients (0: off)
  long long local_sgd_start = -1;            // plain all-reduce for this many steps first (-1: auto)
  // compute
  ConvAlgoRequest conv_algo = ConvAlgoRequest::direct;  // auto | direct | winograd (auto: probe at start-up)
  ComputeDtype compute_dtype = ComputeDtype::fp32;      // the convolutions' and fc1's arithmetic: fp32 | bf16
  // checkpoints
  std::string checkpoint;    // file written every checkpoint_every steps and on SIGTERM/SIGUSR1
  long checkpoint_every = 0; // steps (0: only when signalled, or by time)
  double checkpoint_seconds = 0;  // --checkpoint-every 60s | 5m | 1h: seconds between checkpoints (0: by steps)
  std::string resume;        // continue from this checkpoint
  double stall_timeout = 300;  // s a collective may wait for a rank before the job ends (0: never)
  // output
  std::string metrics;       // HDF5 metrics file ("" = results/run-<time>-np<N>.h5)
  std::string trace;         // Chrome trace JSON ("" = none)
  std::vector<std::pair<std::string, std::string>> meta;  // --meta KEY=VALUE: free labels for the metrics file
  bool force = false;        // overwrite existing output files
  std::string config_file;   // the file the defaults came from
};

std::string to_string(Config::Balance balance);  // "static" | "dynamic"

// Beyond the command line and the TOML file, where an option takes part. Each row of the options
// table says it once, so a new option cannot be left out of one of these by forgetting it there.
enum OptionUse : unsigned {
  kRecorded = 1,  // listed by config_items (the log, the metrics file's config.KEY attributes)
  kAgreed = 2,    // must be equal on every rank (check_config_agreement)
  kIdentity = 4,  // must equal the checkpoint's when resuming (resume_identity)
  // With kIdentity: only for a bit-for-bit continuation, i.e. without --global-batch. With
  // --global-batch the run may resume on another number of ranks, thread count or all-reduce
  // (the same samples in the same order; sums in another order: equal to ~1e-6, not bitwise).
  kBitwise = 8,
};

// What the run made of its options, for the identity values that are not an option's own text.
struct RunShape {
  int world_size = 1;
  bool hierarchical_ring = false;  // the ring all-reduce ran hierarchically (GradientReducer::hierarchical())
};

// One row of the options table (src/app/config.cpp).
struct ConfigOption {
  std::string name;  // --name on the command line, name = ... in the TOML file
  // name with '_' for '-': the key in config_items, the agreement and checkpoints (one exception:
  // shuffle keeps the key no_shuffle its checkpoints and metrics files were written with)
  std::string key;
  unsigned use = 0;  // OptionUse bits
  // What a user reads in --help and docs/reference.md.
  std::string group;         // the heading the option is listed under
  std::string help;          // one line: what it does
  std::string placeholder;   // the value's name (B, FILE, naive|mpi|...); empty for a switch
  std::string unit;          // of the value (images, MB, s, steps, epochs, fraction); empty if none
  std::string default_text;  // the default as a user would write it (on/off for a switch)
  bool is_switch = false;    // --name / --no-name on the command line, name = true|false in TOML
  std::function<std::string(const Config&)> value;  // the value as text
  // The checkpoint's value where it is not value(): what the option made of the run (per-rank
  // batch, ring as run). Empty: value().
  std::function<std::string(const Config&, const RunShape&)> identity;
  // Registers the option with CLI11: its type, help, default and validator.
  std::function<void(CLI::App&, Config&)> add_to_cli;
  // kIdentity options added after the first checkpoints: the value those checkpoints ran with,
  // which a checkpoint without the key is read as (empty: the key is required).
  std::string legacy;
};

// Every option, in the order of --help and config_items.
const std::vector<ConfigOption>& config_options();
// The row whose key is `key`, or nullptr.
const ConfigOption* find_option(const std::string& key);

// Parses argv (and the --config file, default config/default.toml if it exists). Throws
// cifar::Error with a one-line message naming the key or value on any problem. Returns nullopt
// when the user asked for --help or --version. With `speak` (rank 0) it prints the help, the
// version (`version_text`, if given) and one warning line on stderr per spelling from before the
// boolean dialect; the other ranks parse the same arguments silently.
std::optional<Config> parse_config(int argc, char** argv, bool speak,
                                   const std::function<std::string()>& version_text = {});

// The recorded options as key = value lines (for logs and metrics files), then config_file.
std::vector<std::pair<std::string, std::string>> config_items(const Config& c);

}  // namespace cifar
