#include "cifar_mpi/app/config.hpp"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cfloat>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <map>
#include <sstream>
#include <type_traits>

#include "cifar_mpi/app/legacy_spellings.hpp"
#include "cifar_mpi/app/options_text.hpp"
#include "cifar_mpi/model/model_catalog.hpp"
#include "cifar_mpi/util/error.hpp"

namespace cifar {

namespace {

// CLI11's messages can span lines; the program's errors are one line.
std::string one_line(std::string s) {
  for (auto& ch : s)
    if (ch == '\n' || ch == '\r') ch = ' ';
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

// CLI11's PositiveNumber prints "not in range 0.000000 to 1.797...e308 (309 digits)", calls
// "abc" out of range, and CLI::Range lets NaN through (every comparison with NaN is false).
// One validator: a finite number in [low, high] (or (low, high] when low is exclusive), checked
// as the float or integer it will be stored in, named in a few words. Above `high` the message
// names the bound when `what` does not ("> 0", ">= 0"): a too large --seed once said "must be >= 0".
CLI::Validator finite_in(double low, double high, bool low_exclusive, const std::string& what) {
  std::ostringstream bound;
  bound << high;  // 9.2e+18, 3.40282e+38
  const bool names_high = what.find_first_of("])") != std::string::npos;
  const std::string range = names_high ? what : what + " and at most " + bound.str();
  return CLI::Validator(
      [=](std::string& v) -> std::string {
        double x = 0;
        if (!CLI::detail::lexical_cast(v, x)) return "'" + v + "' is not a number";
        if (!std::isfinite(x)) return "must be a finite number, got " + v;
        if (low_exclusive ? x <= low : x < low) return "must be " + what + ", got " + v;
        if (x > high) return "'" + v + "' is out of range: must be " + range;
        return {};
      },
      what);
}

// The value as config_items has always written it: bools as 1 / 0, floats with 6 digits.
template <class T>
std::string text(const T& v) {
  if constexpr (std::is_enum_v<T>) {
    return to_string(v);
  } else {
    std::ostringstream os;
    os << v;
    return os.str();
  }
}

// The default as a user writes it: on/off for a switch, "none" for an unset file.
template <class T>
std::string shown_default(const T& v) {
  if constexpr (std::is_same_v<T, bool>)
    return v ? "on" : "off";
  else if constexpr (std::is_same_v<T, std::string>)
    return v.empty() ? "none" : v;
  else
    return text(v);
}

std::string key_of(std::string name) {
  std::replace(name.begin(), name.end(), '-', '_');
  return name;
}

// How --help and docs/reference.md show an option's value: its placeholder and unit.
struct Shown {
  const char* placeholder;
  const char* unit;
};

// A row whose value is the member `m` (its text). The CLI adder is the caller's.
template <class T>
ConfigOption row(const char* name, T Config::*m, const char* help, unsigned use,
                 std::function<CLI::Option*(CLI::App&, T&, const std::string&, const std::string&)> add) {
  ConfigOption o;
  o.name = name;
  o.key = key_of(name);
  o.use = use;
  o.help = help;
  o.default_text = shown_default(Config{}.*m);
  o.value = [m](const Config& c) { return text(c.*m); };
  o.add_to_cli = [m, add, flag = "--" + o.name, help = o.help](CLI::App& app, Config& c) { add(app, c.*m, flag, help); };
  return o;
}

// A count's value: digits with an optional sign (the range is the option's own check). Without it
// CLI11 ends a 1e3 or a 2.5 with "Could not convert: --seed = 1e3", after the range check passed.
CLI::Validator whole_number() {
  return CLI::Validator(
      [](std::string& v) -> std::string {
        const size_t first = v.empty() || (v[0] != '-' && v[0] != '+') ? 0 : 1;
        if (v.size() == first || v.find_first_not_of("0123456789", first) != std::string::npos)
          return "'" + v + "' is not a whole number";
        return {};
      },
      "");  // no description: CLI11 would add it to the type in "1 required INT ... missing"
}

// A file or folder name given as an empty string: refused rather than read as "none" (the option
// left out is how to get its default).
CLI::Validator non_empty_name() {
  return CLI::Validator(
      [](std::string& v) -> std::string {
        return v.empty() ? "an empty name: give one, or leave the option out for its default" : std::string();
      },
      "");
}

// --name VALUE, checked by `check` if given (a whole number first, for an integer member; a
// FILE or DIR not empty).
template <class T>
ConfigOption value_option(const char* name, T Config::*m, Shown shown, const char* help, unsigned use,
                          std::optional<CLI::Validator> check = std::nullopt) {
  const bool is_path = std::string(shown.placeholder) == "FILE" || std::string(shown.placeholder) == "DIR";
  ConfigOption o = row<T>(name, m, help, use,
                          [check, is_path](CLI::App& app, T& v, const std::string& flag, const std::string& help_text) {
                            CLI::Option* option = app.add_option(flag, v, help_text);
                            if constexpr (std::is_integral_v<T>) option->check(whole_number());
                            if (is_path) option->check(non_empty_name());
                            if (check) option->check(*check);
                            return option;
                          });
  o.placeholder = shown.placeholder;
  o.unit = shown.unit;
  return o;
}

// A switch: --name sets it, --no-name clears it (the last one given wins); name = true|false in TOML.
ConfigOption switch_option(const char* name, bool Config::*m, const char* help, unsigned use) {
  ConfigOption o = row<bool>(name, m, help, use,
                             [](CLI::App& app, bool& v, const std::string& flag, const std::string& help_text) {
                               return app.add_flag(flag + ",!--no-" + flag.substr(2), v, help_text);
                             });
  o.is_switch = true;
  return o;
}

// --name takes one of `names` (listed in this order; enum numbers are refused).
template <class T>
ConfigOption choice_option(const char* name, T Config::*m, const char* help, unsigned use,
                           std::vector<std::pair<std::string, T>> names, const char* default_name) {
  ConfigOption o = row<T>(name, m, help, use,
                          [=](CLI::App& app, T& v, const std::string& flag, const std::string& help_text) {
                            std::vector<std::string> members;
                            for (const auto& [n, value] : names) members.push_back(n);
                            return app.add_option(flag, v, help_text)
                                ->transform(CLI::Transformer(std::map<std::string, T>(names.begin(), names.end())))
                                ->transform(CLI::IsMember(members))  // runs first: names, not enum numbers
                                ->default_str(default_name);
                          });
  for (const auto& [n, value] : names) o.placeholder += (o.placeholder.empty() ? "" : "|") + n;
  o.default_text = default_name;
  return o;
}

// --meta KEY=VALUE (repeatable). Labels a run's metrics file with facts the program cannot know
// (the link rate of simulated hosts, a cluster's name): root attributes meta.KEY of the metrics file.
ConfigOption meta_option(unsigned use) {
  ConfigOption o;
  o.name = o.key = "meta";
  o.use = use;
  o.help = "a label stored in the metrics file as attribute meta.KEY (repeatable)";
  o.placeholder = "KEY=VALUE";
  o.default_text = "none";
  o.value = [](const Config& c) {
    std::string s;
    for (const auto& [k, v] : c.meta) s += (s.empty() ? "" : ",") + k + "=" + v;
    return s;
  };
  o.add_to_cli = [help = o.help](CLI::App& app, Config& c) {
    app.add_option_function<std::vector<std::string>>(
           "--meta",
           [&c](const std::vector<std::string>& items) {
             for (const auto& item : items) {
               const auto eq = item.find('=');
               c.meta.emplace_back(item.substr(0, eq), item.substr(eq + 1));
             }
           },
           help)
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)  // repeatable: every label counts
        ->check(CLI::Validator(
            [](std::string& v) -> std::string {
              const auto eq = v.find('=');
              if (eq == std::string::npos || eq == 0) return "'" + v + "' is not KEY=VALUE";
              for (char ch : v.substr(0, eq))
                if (!(std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '-' || ch == '.'))
                  return "key '" + v.substr(0, eq) + "' may hold only letters, digits, '_', '-' and '.'";
              return {};
            },
            "KEY=VALUE"));
  };
  return o;
}

// What the rows' use bits mean for the run:
//  * kAgreed: everything that changes what a rank computes or writes. Not agreed, as they may
//    legitimately differ: data_dir (node-local copies; run_training checks the sets' sizes) and
//    metrics (only rank 0 writes it; the program fills in a default on rank 0 alone).
//  * kIdentity: what decides the bits of the weights, so a resumed run continues the same run.
//  * kRecorded: everything but log_every, force and meta (meta has attributes of its own).
constexpr unsigned kAll = kRecorded | kAgreed;

// --bucket-mb auto | MB: 0 in Config::bucket_mb is auto (reduction_plan.hpp), shown as "auto".
ConfigOption bucket_mb_option() {
  ConfigOption o;
  o.name = "bucket-mb";
  o.key = "bucket_mb";
  o.use = kAll | kIdentity | kBitwise;
  o.help = "gradient bucket size, or auto: planned from the timed backward and the fitted link so the first "
           "reduction starts early (with --overlap), one bucket (without)";
  o.placeholder = "MB|auto";
  o.unit = "MB";
  o.default_text = "auto";
  o.value = [](const Config& c) { return c.bucket_mb == 0 ? std::string("auto") : text(c.bucket_mb); };
  o.add_to_cli = [help = o.help](CLI::App& app, Config& c) {
    const auto in_range = finite_in(1e-6, 1e6, false, "auto or a number in [1e-6, 1e6]");
    app.add_option_function<std::string>(
           "--bucket-mb", [&c](const std::string& v) { c.bucket_mb = v == "auto" ? 0 : std::stod(v); }, help)
        ->check(CLI::Validator(
            [in_range](std::string& v) -> std::string { return v == "auto" ? std::string() : in_range(v); },
            "auto or a number in [1e-6, 1e6]"))
        ->default_str("auto");
  };
  return o;
}

// --checkpoint-every K (steps) | 60s | 5m | 1h (time, rank 0's clock; every rank checkpoints after
// the same step). Config::checkpoint_every holds steps, Config::checkpoint_seconds a time.
std::string checkpoint_every_text(const Config& c) {
  if (c.checkpoint_seconds <= 0) return text(c.checkpoint_every);
  std::string s = text(c.checkpoint_seconds);
  return s + "s";
}

// "" if v is steps or a time (filled into c), else why not.
std::string parse_checkpoint_every(const std::string& v, Config* c) {
  const std::string bad = "'" + v + "' is not a number of steps (100) or a time (60s, 5m, 1h)";
  if (v.empty()) return bad;
  const char last = v.back();
  const bool timed = last == 's' || last == 'm' || last == 'h';
  const std::string number = timed ? v.substr(0, v.size() - 1) : v;
  if (number.empty() || number.find_first_not_of(timed ? "0123456789." : "0123456789") != std::string::npos)
    return bad;
  try {
    if (!timed) {
      const long steps = std::stol(number);
      if (c) c->checkpoint_every = steps, c->checkpoint_seconds = 0;
      return {};
    }
    const double seconds = std::stod(number) * (last == 'h' ? 3600 : last == 'm' ? 60 : 1);
    if (!(seconds > 0) || seconds > 1e9) return "a time must be > 0 and at most 1e9 s, got " + v;
    if (c) c->checkpoint_seconds = seconds, c->checkpoint_every = 0;
    return {};
  } catch (const std::exception&) {
    return bad;
  }
}

ConfigOption checkpoint_every_option() {
  ConfigOption o;
  o.name = "checkpoint-every";
  o.key = "checkpoint_every";
  o.use = kAll;
  o.help = "steps between checkpoints, or a time (60s, 5m, 1h: rank 0's clock, all ranks after the same step); "
           "written by a thread while training goes on (0: only when signalled)";
  o.placeholder = "K|TIME";
  o.unit = "steps or s/m/h";
  o.default_text = "0";
  o.value = checkpoint_every_text;
  o.add_to_cli = [help = o.help](CLI::App& app, Config& c) {
    app.add_option_function<std::string>(
           "--checkpoint-every", [&c](const std::string& v) { parse_checkpoint_every(v, &c); }, help)
        ->check(CLI::Validator([](std::string& v) -> std::string { return parse_checkpoint_every(v, nullptr); },
                               "K|TIME"))
        ->default_str("0");
  };
  return o;
}

void add_data_and_training(std::vector<ConfigOption>& t) {
  // lr is a float: below FLT_MIN it would round to 0, above FLT_MAX to inf.
  const auto positive_float = finite_in(FLT_MIN, FLT_MAX, false, "> 0");
  const auto non_negative = finite_in(0, 9.2e18, false, ">= 0");
  t.push_back(value_option("data-dir", &Config::data_dir, {"DIR", ""},
                           "folder holding data_batch_{1..5}.bin and test_batch.bin", kRecorded));
  // The model decides the tensors a checkpoint holds: one of another model is not resumed (identity).
  // Its help lists the model catalog: a model added there is documented here by itself.
  std::vector<std::string> models;
  std::string model_help = "the network:";
  for (const ModelSpec* m : all_models()) {
    model_help += std::string(models.empty() ? " " : " | ") + m->name + " (" + m->description + ")";
    models.push_back(m->name);
  }
  ConfigOption model = value_option("model", &Config::model, {"", ""}, model_help.c_str(), kAll | kIdentity,
                                    CLI::IsMember(models));  // (the row keeps a copy of the help)
  model.placeholder = model_names();
  // Checkpoints have always recorded config.model, as "SimpleCNN" before there was a choice.
  model.identity = [](const Config& c, const RunShape&) { return c.model == "simplecnn" ? "SimpleCNN" : c.model; };
  t.push_back(model);
  t.push_back(switch_option("sync-bn", &Config::sync_bn,
                            "BatchNorm normalises over the global batch, as PyTorch's SyncBatchNorm: each "
                            "BatchNorm sums its statistics across the ranks in forward, and two gradient sums in "
                            "backward (off: each rank over its own share, as DDP; a model without BatchNorm "
                            "ignores it)",
                            kAll));
  ConfigOption shuffle = switch_option("shuffle", &Config::shuffle,
                                       "a new order of the training images each epoch, drawn from --seed "
                                       "(--no-shuffle: batch i is records i*B .. (i+1)*B-1 in file order)",
                                       kAll | kIdentity);
  // Checkpoints and metrics files have always recorded the switch as no_shuffle = 1|0: so they
  // still do, and the checkpoints written before the dialect resume.
  shuffle.key = "no_shuffle";
  shuffle.value = [](const Config& c) { return text(!c.shuffle); };
  t.push_back(shuffle);
  t.push_back(switch_option("drop-last", &Config::drop_last, "drop each epoch's final partial batch",
                            kAll | kIdentity));
  t.push_back(value_option("epochs", &Config::epochs, {"N", "epochs"}, "epochs to train", kAll,
                           CLI::Range(1, 100000)));
  ConfigOption batch = value_option("batch-size", &Config::batch_size, {"B", "images per rank"},
                                    "images a rank trains per step (the global batch grows with the number of "
                                    "ranks); not with --global-batch on the command line, and replaces a config file's global-batch",
                                    kAll | kIdentity | kBitwise, CLI::Range(size_t{1}, size_t{65536}));
  batch.identity = [](const Config& c, const RunShape& r) {  // the per-rank batch that ran
    return text(c.global_batch ? c.global_batch / static_cast<size_t>(r.world_size) : c.batch_size);
  };
  t.push_back(batch);
  ConfigOption global = value_option("global-batch", &Config::global_batch, {"B", "images"},
                                     "images per step split across the ranks, which must divide it (0: "
                                     "--batch-size per rank instead; replaces a config file's batch-size); a "
                                     "checkpoint of a run with it resumes on any number of ranks that divides it",
                                     kAll | kIdentity, CLI::Range(size_t{0}, size_t{1} << 20));
  global.identity = [](const Config& c, const RunShape& r) {  // the global batch that ran, either way
    return text(c.global_batch ? c.global_batch : c.batch_size * static_cast<size_t>(r.world_size));
  };
  t.push_back(global);
  // Passes sum a batch's gradient in another order: the bits change (identity); like the batch
  // size it need not match for a --global-batch resume on another N (kBitwise).
  ConfigOption micro = value_option("micro-batch", &Config::micro_batch, {"B", "images"},
                                    "images per forward/backward pass, the gradients summed over the rank's batch (0: "
                                    "the whole batch in one pass; at most the per-rank batch); smaller passes keep "
                                    "the activations in the cache",
                                    kAll | kIdentity | kBitwise, CLI::Range(size_t{0}, size_t{65536}));
  micro.legacy = "0";  // checkpoints from before the option ran in one pass
  t.push_back(micro);
  // Which rank sums which images changes the bits from run to run: a dynamic run is not resumed
  // bitwise, so a checkpoint says which it was (identity).
  ConfigOption balance = choice_option(
      "balance", &Config::balance,
      "how a step's images are split between the ranks: static (each rank its own 1/N) | dynamic (the ranks "
      "of one host draw them in shrinking chunks, so a rank the host slows down takes fewer; the same "
      "images per step, but the bits differ from run to run)",
      kAll | kIdentity, {{"static", Config::Balance::fixed}, {"dynamic", Config::Balance::dynamic}}, "static");
  balance.legacy = "static";
  t.push_back(balance);
  t.push_back(value_option("lr", &Config::lr, {"LR", ""},
                           "learning rate (at a global batch of 128 when --lr-scaling scales it)", kAll | kIdentity,
                           positive_float));
  t.push_back(value_option("momentum", &Config::momentum, {"M", ""}, "SGD momentum, in [0, 1)", kAll | kIdentity,
                           finite_in(0, 0.99999, false, "in [0, 1)")));
  t.push_back(value_option("seed", &Config::seed, {"N", ""}, "seed of the initial weights and the shuffling",
                           kAll | kIdentity, non_negative));
  t.push_back(value_option("threads", &Config::threads, {"N", "threads per rank"}, "oneDNN/OpenMP threads per process",
                           kAll | kIdentity | kBitwise, CLI::Range(1, 1024)));
  t.push_back(value_option("max-steps", &Config::max_steps, {"K", "steps"}, "stop after K steps (0: whole epochs)",
                           kAll, non_negative));
  t.push_back(switch_option("eval", &Config::eval, "evaluate the test accuracy after each epoch", kAll));
  t.push_back(value_option("log-every", &Config::log_every, {"K", "steps"}, "steps between progress lines (rank 0)",
                           kAgreed, CLI::Range(1, 1000000)));
}

// The learning-rate policy, regularisation, augmentation and the target: what decides how soon
// a run reaches an accuracy (README "Time to accuracy"). Checkpoints written before these options
// existed ran with their defaults (legacy).
void add_policy_and_target(std::vector<ConfigOption>& t) {
  const auto with_legacy = [&t](ConfigOption o, const char* legacy) {
    o.legacy = legacy;
    t.push_back(std::move(o));
  };
  with_legacy(choice_option("lr-schedule", &Config::lr_schedule,
                            "learning rate per step, as PyTorch's schedulers: constant | step (times --lr-gamma "
                            "every --lr-step-epochs) | cosine (annealed to 0) | onecycle (up over the first 30%, "
                            "then a cosine anneal)",
                            kAll | kIdentity,
                            {{"constant", LrScheduleKind::constant},
                             {"step", LrScheduleKind::step},
                             {"cosine", LrScheduleKind::cosine},
                             {"onecycle", LrScheduleKind::onecycle}},
                            "constant"),
              "constant");
  with_legacy(value_option("warmup-epochs", &Config::warmup_epochs, {"E", "epochs"},
                           "linear warm-up from lr/steps to lr over this many epochs (fractions allowed; not with "
                           "onecycle, which has its own)",
                           kAll | kIdentity, finite_in(0, 1e5, false, ">= 0")),
              "0");
  with_legacy(choice_option("lr-scaling", &Config::lr_scaling,
                            "scale --lr with the global batch B against 128: none | linear (times B/128) | sqrt "
                            "(times sqrt(B/128)); the start-up log prints the lr that results",
                            kAll | kIdentity,
                            {{"none", LrScaling::none}, {"linear", LrScaling::linear}, {"sqrt", LrScaling::sqrt}},
                            "none"),
              "none");
  with_legacy(value_option("lr-step-epochs", &Config::lr_step_epochs, {"E", "epochs"},
                           "step schedule: multiply the lr by --lr-gamma every this many epochs", kAll | kIdentity,
                           CLI::Range(size_t{0}, size_t{100000})),
              "0");
  with_legacy(value_option("lr-gamma", &Config::lr_gamma, {"F", "factor"}, "step schedule: decay factor, in (0, 1]",
                           kAll | kIdentity, finite_in(0, 1, true, "in (0, 1]")),
              "0.1");
  with_legacy(value_option("weight-decay", &Config::weight_decay, {"WD", ""},
                           "L2 weight decay (coupled, as torch.optim.SGD), in [0, 1]", kAll | kIdentity,
                           finite_in(0, 1, false, "in [0, 1]")),
              "0");
  with_legacy(switch_option("nesterov", &Config::nesterov, "Nesterov momentum (needs --momentum > 0)",
                            kAll | kIdentity),
              "0");
  with_legacy(choice_option("augment", &Config::augment,
                            "training augmentation: none | crop-flip (random crop after 4-pixel zero padding, "
                            "horizontal flip; drawn from seed, epoch and image)",
                            kAll | kIdentity, {{"none", Augment::none}, {"crop-flip", Augment::crop_flip}}, "none"),
              "none");
  t.push_back(value_option("target-accuracy", &Config::target_accuracy, {"A", "fraction"},
                           "stop every rank at the first evaluation reaching this test accuracy (e.g. 0.70; 0: "
                           "none; needs --eval)",
                           kAll, finite_in(0, 1, false, "a fraction in [0, 1]")));
  t.push_back(value_option("eval-every", &Config::eval_every, {"K", "steps"},
                           "also evaluate every K steps (0: only at the end of each epoch; needs --eval)", kAll,
                           finite_in(0, 9.2e18, false, ">= 0")));
}

void add_weights_and_communication(std::vector<ConfigOption>& t) {
  t.push_back(value_option("init-weights", &Config::init_weights, {"FILE", ""},
                           "start from these weights (HDF5, PyTorch state_dict names)", kAll));
  t.push_back(value_option("save-weights", &Config::save_weights, {"FILE", ""}, "write the final weights here (HDF5)",
                           kAll));
  t.push_back(choice_option("allreduce", &Config::allreduce,
                            "gradient averaging: naive | mpi | ring | rhd (recursive halving and doubling: "
                            "2 log2(N) latency terms) | auto (per bucket, the least predicted time under an "
                            "alpha-beta link model fitted at start-up)",
                            kAll | kIdentity | kBitwise,
                            {{"naive", AllreduceStrategy::naive},
                             {"mpi", AllreduceStrategy::mpi},
                             {"ring", AllreduceStrategy::ring},
                             {"rhd", AllreduceStrategy::rhd},
                             {"auto", AllreduceStrategy::auto_}},
                            "mpi"));
  t.push_back(bucket_mb_option());
  t.push_back(value_option("link-model", &Config::link_model, {"FILE", ""},
                           "alpha-beta per all-reduce from allreduce_bench --fit-out FILE (rank 0 reads it), "
                           "instead of the start-up probe (--allreduce auto, --bucket-mb auto)",
                           kAll));
  t.push_back(switch_option("overlap", &Config::overlap, "overlap the bucket reductions with the backward pass",
                            kAll));
  t.push_back(switch_option("overlap-trial", &Config::overlap_trial,
                            "with --overlap: steps 3-10 are pairs of an overlapped and a held-back step, and the run keeps "
                            "overlap only if it shortened the step; 2 steps in 50 review the verdict (off: overlap on "
                            "every step)",
                            kAll));
  ConfigOption ring = choice_option(
      "ring-layout", &Config::ring_layout,
      "ring and rhd across hosts: hosts (within each host, then the ring or rhd across hosts: each "
      "link carries 2(H-1)/H of the gradients) | flat (one ring or rhd in rank order: 2(N-1)/N); "
      "naive and mpi ignore it",
      kAll | kIdentity | kBitwise, {{"hosts", RingLayout::hosts}, {"flat", RingLayout::flat}}, "hosts");
  // What ran, not what was asked: on one host both layouts give the same bits.
  ring.identity = [](const Config&, const RunShape& r) {
    return std::string(r.hierarchical_ring ? "hierarchical" : "flat");
  };
  ring.legacy = "flat";  // checkpoints from before the key ran the flat ring
  t.push_back(ring);
  t.push_back(choice_option("wire-dtype", &Config::wire_dtype,
                            "gradients on the wire: fp32 | bf16 | fp16 (summed in fp32)", kAll | kIdentity,
                            {{"fp32", WireDtype::fp32}, {"bf16", WireDtype::bf16}, {"fp16", WireDtype::fp16}},
                            "fp32"));
}

// How the convolutions compute. Both change the bits of the weights (identity); checkpoints from
// before the keys ran direct fp32.
void add_compute(std::vector<ConfigOption>& t) {
  ConfigOption algo = choice_option(
      "conv-algo", &Config::conv_algo,
      "convolution algorithm: direct | winograd | auto (rank 0 times both per layer and pass at start-up, "
      "all ranks run its choice)",
      kAll | kIdentity,
      {{"direct", ConvAlgoRequest::direct}, {"winograd", ConvAlgoRequest::winograd}, {"auto", ConvAlgoRequest::auto_}},
      "direct");
  algo.legacy = "direct";
  t.push_back(algo);
  ConfigOption dtype = choice_option(
      "compute-dtype", &Config::compute_dtype,
      "arithmetic of the convolutions and fc1: fp32 | bf16 (needs avx512_bf16 or AMX; weights, gradients and "
      "update stay fp32)",
      kAll | kIdentity, {{"fp32", ComputeDtype::fp32}, {"bf16", ComputeDtype::bf16}}, "fp32");
  dtype.legacy = "fp32";
  t.push_back(dtype);
}

void add_checkpoints_and_output(std::vector<ConfigOption>& t) {
  const auto non_negative = finite_in(0, 9.2e18, false, ">= 0");
  ConfigOption checkpoint = value_option("checkpoint", &Config::checkpoint, {"FILE", ""},
                                         "checkpoint file (HDF5), written every --checkpoint-every steps, when "
                                         "SIGTERM/SIGUSR1 arrives and, if given, at the end of the run",
                                         kAll);
  checkpoint.default_text = "checkpoint.h5";  // RunSetup::checkpoint_path
  t.push_back(checkpoint);
  t.push_back(checkpoint_every_option());
  t.push_back(value_option("resume", &Config::resume, {"FILE", ""}, "continue the run saved in this checkpoint",
                           kAll));
  ConfigOption metrics = value_option("metrics", &Config::metrics, {"FILE", ""},
                                      "HDF5 metrics file of the run (rank 0 writes it)", kRecorded);
  metrics.default_text = "results/run-<time>-np<N>.h5";  // main() fills it in (default_metrics_path)
  t.push_back(metrics);
  t.push_back(value_option("trace", &Config::trace, {"FILE", ""},
                           "write a Chrome trace (JSON) of the first 100 steps here", kAll));
  t.push_back(switch_option(
      "force", &Config::force,
      "overwrite an existing metrics file (the weights, checkpoint and trace files are always replaced)", kAgreed));
  t.push_back(meta_option(kAgreed));
  t.push_back(value_option("stall-timeout", &Config::stall_timeout, {"S", "s"},
                           "how long a rank may wait for another at a collective before the job ends with exit 76, "
                           "naming the missing ranks, once one of them does not answer pings (stopped or lost); "
                           "ranks that answer are slow, not stopped, and are waited for up to 10x as long (at "
                           "least 60 s). 2-3 s suits a recovering launcher. Without MPI_THREAD_MULTIPLE, a hard "
                           "limit on every wait (0: wait forever)",
                           kAll, finite_in(0, 1e7, false, "in [0, 1e7]")));
}


// --NAME auto | STEPS: -1 in the member is auto (a tenth of the first epoch, config.hpp start_step).
ConfigOption start_option(const char* name, long long Config::*m, const char* help) {
  ConfigOption o;
  o.name = name;
  o.key = key_of(name);
  o.use = kAll | kIdentity;
  o.help = help;
  o.placeholder = "STEPS|auto";
  o.unit = "steps";
  o.default_text = "auto";
  o.legacy = "auto";
  o.value = [m](const Config& c) { return c.*m < 0 ? std::string("auto") : text(c.*m); };
  o.add_to_cli = [m, flag = "--" + o.name, help = o.help](CLI::App& app, Config& c) {
    app.add_option_function<std::string>(
           flag, [&c, m](const std::string& v) { c.*m = v == "auto" ? -1 : std::stoll(v); }, help)
        ->check(CLI::Validator(
            [](std::string& v) -> std::string {
              if (v == "auto") return {};
              long long x = 0;
              if (!CLI::detail::lexical_cast(v, x)) return "'" + v + "' is not auto or a whole number of steps";
              if (x < 0) return "must be auto or a number of steps >= 0, got " + v;
              return {};
            },
            "auto or a number of steps >= 0"))
        ->default_str("auto");
  };
  return o;
}

// Sending less: PowerSGD (comm/powersgd.hpp) and local SGD (comm/model_averaging.hpp). Both change
// the bits of the weights (identity); checkpoints from before the options ran neither.
void add_sending_less(std::vector<ConfigOption>& t) {
  ConfigOption compress = choice_option(
      "compress", &Config::compress,
      "gradient compression: none | powersgd (each weight matrix sent as rank-R factors P and Q, two dependent "
      "all-reduces, with error feedback, as PyTorch's powerSGD_hook)",
      kAll | kIdentity, {{"none", Compression::none}, {"powersgd", Compression::powersgd}}, "none");
  compress.legacy = "none";
  t.push_back(compress);
  ConfigOption rank = value_option("compress-rank", &Config::compress_rank, {"R", ""},
                                   "PowerSGD's rank (clamped to each matrix's min(rows, cols); matrices it would "
                                   "not shrink 2x go uncompressed)",
                                   kAll | kIdentity, CLI::Range(size_t{1}, size_t{4096}));
  rank.legacy = "4";
  t.push_back(rank);
  t.push_back(start_option("compress-start",  &Config::compress_start,
                           "plain all-reduce for the first STEPS steps, then --compress (auto: a tenth of the "
                           "first epoch)"));
  ConfigOption local = value_option("local-sgd", &Config::local_sgd, {"K", "steps"},
                                    "after --local-sgd-start, each rank steps on its own gradients and the ranks "
                                    "average the weights every K steps (0: off; momentum stays per rank)",
                                    kAll | kIdentity, CLI::Range(size_t{0}, size_t{1000000}));
  local.legacy = "0";
  t.push_back(local);
  t.push_back(start_option("local-sgd-start", &Config::local_sgd_start,
                           "plain all-reduce for the first STEPS steps, then --local-sgd (auto: a tenth of the "
                           "first epoch)"));
}

}  // namespace

std::string to_string(Config::Balance balance) { return balance == Config::Balance::dynamic ? "dynamic" : "static"; }

namespace {

// Options that are each valid but cannot run together: one line naming them.
void check_combinations(const Config& c) {
  const auto bad = [](const std::string& what) { throw Error("invalid configuration: " + what); };
  if (c.target_accuracy > 0 && !c.eval)
    bad("--target-accuracy " + text(c.target_accuracy) + " needs --eval (the target is checked at evaluations)");
  if (c.eval_every > 0 && !c.eval) bad("--eval-every " + text(c.eval_every) + " needs --eval");
  if (c.lr_schedule == LrScheduleKind::onecycle && c.warmup_epochs > 0)
    bad("--warmup-epochs " + text(c.warmup_epochs) + " cannot be combined with --lr-schedule onecycle (it warms up "
        "over its first 30%)");
  if (c.lr_schedule == LrScheduleKind::step && c.lr_step_epochs == 0)
    bad("--lr-schedule step needs --lr-step-epochs (epochs between decays)");
  // Only the step schedule reads it: with another it was ignored without a word.
  if (c.lr_step_epochs > 0 && c.lr_schedule != LrScheduleKind::step)
    bad("--lr-step-epochs " + text(c.lr_step_epochs) + " needs --lr-schedule step (the " +
        to_string(c.lr_schedule) + " schedule has no steps)");
  // A pass larger than the rank's batch was clamped to the batch: one pass, not what was asked
  // (and recorded). With --global-batch the per-rank batch is known at start-up (run_setup.cpp).
  if (c.global_batch == 0 && c.micro_batch > c.batch_size)
    bad("--micro-batch " + text(c.micro_batch) + " exceeds the per-rank batch (--batch-size " + text(c.batch_size) +
        "): give at most " + text(c.batch_size) + ", or 0 for one pass");
  if (c.warmup_epochs >= c.epochs)
    bad("--warmup-epochs " + text(c.warmup_epochs) + " must be shorter than --epochs " + text(c.epochs));
  if (c.nesterov && c.momentum <= 0) bad("--nesterov needs --momentum > 0");
  if (c.compress != Compression::none && c.local_sgd > 0)
    bad("--local-sgd " + text(c.local_sgd) + " and --compress " + to_string(c.compress) +
        " cannot run together: local SGD averages weights, compression gradients; give one");
  if (c.balance == Config::Balance::dynamic && c.sync_bn)
    bad("--sync-bn needs every rank to run the same passes, and --balance dynamic draws them unevenly: drop one");
  if (c.balance == Config::Balance::dynamic && c.micro_batch > 0)
    bad("--balance dynamic cuts each step into chunks of its own; drop --micro-batch " + text(c.micro_batch));
}

// --meta labels become attributes meta.KEY of the metrics file, written after the training: a key
// given twice, or one the program writes itself (meta.conv_algo.LAYER), would fail that write and
// lose the run's outputs, so it is refused now.
void check_meta_keys(const Config& c) {
  std::set<std::string> seen;
  for (const auto& [k, v] : c.meta) {
    if (k.rfind("conv_algo.", 0) == 0)
      throw Error("invalid configuration: --meta " + k + "=" + v +
                  ": the program writes meta.conv_algo.* itself (the algorithm of each convolution); choose "
                  "another key");
    if (!seen.insert(k).second) throw Error("invalid configuration: --meta key '" + k + "' given twice");
  }
}

// Given on the command line (as --name VALUE or --name=VALUE).
bool given(const std::vector<std::string>& args, const std::string& name) {
  const std::string flag = "--" + name;
  return std::any_of(args.begin(), args.end(),
                     [&](const std::string& a) { return a == flag || a.rfind(flag + "=", 0) == 0; });
}

// Two batch sizes on one command line contradict each other. A config file's batch-size with a
// command-line --global-batch does not: the command line wins (config/default.toml sets batch-size).
void refuse_both_batch_sizes(const std::vector<std::string>& args) {
  if (given(args, "batch-size") && given(args, "global-batch"))
    throw Error("invalid configuration: --batch-size and --global-batch both given on the command line: give one "
                "(--batch-size is per rank, --global-batch is split across the ranks)");
}

// The two batch sizes are one setting: a nonzero global_batch overrides batch_size. So the one
// given on the command line replaces the file's, whichever it is: without this a file's
// global-batch would silently override a command-line --batch-size. A file setting both
// contradicts itself (which one ran would depend on a rule the file does not show).
void resolve_batch_sizes(const std::vector<std::string>& file_keys, const std::vector<std::string>& args,
                         Config& c) {
  const auto in_file = [&](const std::string& key) {
    return std::find(file_keys.begin(), file_keys.end(), key) != file_keys.end();
  };
  if (in_file("batch-size") && in_file("global-batch"))
    throw Error("invalid configuration: " + c.config_file +
                ": batch-size and global-batch both set: give one (batch-size is per rank, global-batch is "
                "split across the ranks)");
  if (given(args, "batch-size")) c.global_batch = 0;  // a file's global-batch yields to it
}

// --help and --version into a full disk or a closed pipe must not report success.
void print_or_fail(const std::string& text, const std::string& what) {
  std::cout << text << std::flush;
  if (!std::cout) throw Error("cannot write " + what + " to standard output");
}

void build_app(CLI::App& app, Config& c) {
  // A value option given twice takes the last, as a switch does (--lr 0.1 ... --lr 0.2 is 0.2): a
  // wrapper's options can be overridden by appending, as with most programs. CLI11's default
  // refused it as "At Most 1 required but received 2". Each value is still checked.
  app.option_defaults()->always_capture_default()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.set_config("--config", "", "TOML file of defaults (config/default.toml); command line overrides it");
  app.allow_config_extras(CLI::config_extras_mode::error);  // a misspelt key must not pass silently
  for (const auto& o : config_options()) o.add_to_cli(app, c);
}

}  // namespace

std::optional<Config> parse_config(int argc, char** argv, bool speak, const std::function<std::string()>& version_text) {
  std::vector<std::string> args(argv + std::min(argc, 1), argv + argc);
  // Before anything that could fail: --version answers whatever else is on the line.
  if (std::find(args.begin(), args.end(), "--version") != args.end()) {
    if (speak && version_text) print_or_fail(version_text(), "the version");
    return std::nullopt;
  }
  LegacyRewrite rewritten = rewrite_legacy_arguments(args);
  refuse_both_batch_sizes(rewritten.args);
  Config c;
  CLI::App app{"cifar_mpi: synchronous data-parallel training of a CNN on CIFAR-10 (MPI + oneDNN)", "cifar_mpi"};
  build_app(app, c);
  std::vector<std::string> toml_warnings, toml_keys;
  app.config_formatter(legacy_aware_toml(&toml_warnings, &toml_keys));
  // config/default.toml is the default --config when run from the project folder.
  if (std::filesystem::exists("config/default.toml")) app.get_config_ptr()->default_str("config/default.toml");
  try {
    std::vector<std::string> reversed(rewritten.args.rbegin(), rewritten.args.rend());  // CLI11 pops from the back
    app.parse(reversed);
  } catch (const CLI::CallForHelp&) {
    if (speak) print_or_fail(options_help_text(), "the help text");
    return std::nullopt;
  } catch (const TomlError& e) {
    throw Error("invalid configuration: " + app.get_config_ptr()->as<std::string>() + ": " + e.what());
  } catch (const CLI::ConfigError& e) {
    // CLI11 says "INI was not able to parse KEY" without naming the file.
    std::string what = one_line(e.what());
    const std::string prefix = "INI was not able to parse ";
    if (what.rfind(prefix, 0) == 0) what = "unknown key '" + what.substr(prefix.size()) + "'";
    throw Error("invalid configuration: " + app.get_config_ptr()->as<std::string>() + ": " + what);
  } catch (const CLI::ParseError& e) {
    throw Error("invalid configuration: " + one_line(e.what()));
  }
  c.config_file = app.get_config_ptr()->as<std::string>();
  resolve_batch_sizes(toml_keys, rewritten.args, c);
  check_combinations(c);
  check_meta_keys(c);
  if (speak) {
    for (const auto& w : rewritten.warnings) std::cerr << "cifar_mpi: warning: " << w << "\n";
    for (const auto& w : toml_warnings) std::cerr << "cifar_mpi: warning: " << c.config_file << ": " << w << "\n";
  }
  return c;
}

const std::vector<ConfigOption>& config_options() {
  static const std::vector<ConfigOption> table = [] {
    std::vector<ConfigOption> t;
    const auto group = [&t](const char* heading, void (*add)(std::vector<ConfigOption>&)) {
      const size_t first = t.size();
      add(t);
      for (size_t i = first; i < t.size(); ++i) t[i].group = heading;
    };
    group("Data and training", add_data_and_training);
    group("Learning-rate policy and target", add_policy_and_target);
    group("Weights and communication", add_weights_and_communication);
    group("Sending less", add_sending_less);
    group("Compute", add_compute);
    group("Checkpoints and output", add_checkpoints_and_output);
    return t;
  }();
  return table;
}

const ConfigOption* find_option(const std::string& key) {
  for (const auto& o : config_options())
    if (o.key == key) return &o;
  return nullptr;
}

std::vector<std::pair<std::string, std::string>> config_items(const Config& c) {
  std::vector<std::pair<std::string, std::string>> items;
  for (const auto& o : config_options())
    if (o.use & kRecorded) items.emplace_back(o.key, o.value(c));
  items.emplace_back("config_file", c.config_file);  // where the values came from (--config)
  return items;
}

}  // namespace cifar
