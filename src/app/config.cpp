#include "cifar_mpi/app/config.hpp"

#include <CLI/CLI.hpp>

#include <cfloat>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <map>
#include <sstream>

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
// as the float or integer it will be stored in, named in a few words.
CLI::Validator finite_in(double low, double high, bool low_exclusive, const std::string& what) {
  return CLI::Validator(
      [=](std::string& v) -> std::string {
        double x = 0;
        if (!CLI::detail::lexical_cast(v, x)) return "'" + v + "' is not a number";
        if (!std::isfinite(x)) return "must be a finite number, got " + v;
        if (low_exclusive ? x <= low : x < low) return "must be " + what + ", got " + v;
        if (x > high) return "must be " + what + ", got " + v;
        return {};
      },
      what);
}

void build_app(CLI::App& app, Config& c) {
  // lr is a float: below FLT_MIN it would round to 0, above FLT_MAX to inf.
  const auto positive_float = finite_in(FLT_MIN, FLT_MAX, false, "> 0");
  const auto non_negative = finite_in(0, 9.2e18, false, ">= 0");
  app.option_defaults()->always_capture_default();
  app.set_config("--config", "", "TOML file of defaults (config/default.toml); command line overrides it");
  app.allow_config_extras(CLI::config_extras_mode::error);  // a misspelt key must not pass silently
  app.add_option("--data-dir", c.data_dir, "folder holding data_batch_{1..5}.bin and test_batch.bin");
  app.add_flag("--no-shuffle", c.no_shuffle, "batches in file order (batch i = records i*B .. (i+1)*B-1)");
  app.add_flag("--drop-last", c.drop_last, "drop each epoch's final partial batch");
  app.add_option("--epochs", c.epochs, "epochs to train")->check(CLI::Range(1, 100000));
  app.add_option("--batch-size", c.batch_size, "per-rank batch size")->check(CLI::Range(size_t{1}, size_t{65536}));
  app.add_option("--global-batch", c.global_batch, "global batch split across ranks (0: use --batch-size)")
      ->check(CLI::Range(size_t{0}, size_t{1} << 20));
  app.add_option("--lr", c.lr, "learning rate")->check(positive_float);
  app.add_option("--momentum", c.momentum, "SGD momentum")->check(finite_in(0, 0.99999, false, "in [0, 1)"));
  app.add_option("--seed", c.seed, "seed of initial weights and shuffling")->check(non_negative);
  app.add_option("--threads", c.threads, "oneDNN/OpenMP threads per process")->check(CLI::Range(1, 1024));
  app.add_option("--max-steps", c.max_steps, "stop after K steps (0: whole epochs)")->check(non_negative);
  app.add_option("--eval", c.eval, "evaluate test accuracy after each epoch");
  app.add_option("--log-every", c.log_every, "steps between progress lines")->check(CLI::Range(1, 1000000));
  app.add_option("--init-weights", c.init_weights, "start from these weights (HDF5, PyTorch state_dict names)");
  app.add_option("--save-weights", c.save_weights, "write the final weights here (HDF5)");
  const std::map<std::string, AllreduceStrategy> strategies{
      {"naive", AllreduceStrategy::naive}, {"mpi", AllreduceStrategy::mpi}, {"ring", AllreduceStrategy::ring}};
  app.add_option("--allreduce", c.allreduce, "gradient averaging: naive | mpi | ring")
      ->transform(CLI::Transformer(strategies))
      ->transform(CLI::IsMember({"naive", "mpi", "ring"}))  // runs first: names, not enum numbers
      ->default_str("mpi");
  app.add_option("--bucket-mb", c.bucket_mb, "gradient bucket size in MB")
      ->check(finite_in(1e-6, 1e6, false, "in [1e-6, 1e6]"));
  app.add_option("--overlap", c.overlap, "overlap bucket reductions with backward (on/off)")
      ->transform(CLI::IsMember({"on", "off", "true", "false", "1", "0"}))
      ->default_str("off");
  const std::map<std::string, RingLayout> layouts{{"hosts", RingLayout::hosts}, {"flat", RingLayout::flat}};
  app.add_option("--ring-layout", c.ring_layout,
                 "ring across hosts: hosts (within each host, then across: each link carries 2(H-1)/H of the "
                 "gradients) | flat (one ring in rank order: 2(N-1)/N)")
      ->transform(CLI::Transformer(layouts))
      ->transform(CLI::IsMember({"hosts", "flat"}))
      ->default_str("hosts");
  const std::map<std::string, WireDtype> wire_types{
      {"fp32", WireDtype::fp32}, {"bf16", WireDtype::bf16}, {"fp16", WireDtype::fp16}};
  app.add_option("--wire-dtype", c.wire_dtype, "gradients on the wire: fp32 | bf16 | fp16 (summed in fp32)")
      ->transform(CLI::Transformer(wire_types))
      ->transform(CLI::IsMember({"fp32", "bf16", "fp16"}))
      ->default_str("fp32");
  app.add_option("--checkpoint", c.checkpoint, "checkpoint file (HDF5), written every --checkpoint-every steps "
                 "and when SIGTERM/SIGUSR1 arrives");
  app.add_option("--checkpoint-every", c.checkpoint_every, "steps between checkpoints (0: only when signalled)")
      ->check(non_negative);
  app.add_option("--resume", c.resume, "continue the run saved in this checkpoint");
  app.add_option("--metrics", c.metrics, "HDF5 metrics file (default results/run-<time>.h5)");
  app.add_option("--trace", c.trace, "write a Chrome trace (JSON) of the steps here");
  app.add_flag("--force", c.force, "overwrite existing output files");
  // Labels a run's metrics file with facts the program cannot know (the link rate of simulated
  // hosts, a cluster's name): root attributes meta.KEY of the metrics file.
  app.add_option_function<std::vector<std::string>>(
         "--meta",
         [&c](const std::vector<std::string>& items) {
           for (const auto& item : items) {
             const auto eq = item.find('=');
             c.meta.emplace_back(item.substr(0, eq), item.substr(eq + 1));
           }
         },
         "KEY=VALUE label stored in the metrics file as attribute meta.KEY (repeatable)")
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
}

}  // namespace

std::optional<Config> parse_config(int argc, char** argv, bool print_help) {
  Config c;
  CLI::App app{"cifar_mpi: synchronous data-parallel training of a CNN on CIFAR-10 (MPI + oneDNN)",
               "cifar_mpi"};
  build_app(app, c);
  // config/default.toml is the default --config when run from the project folder.
  if (std::filesystem::exists("config/default.toml")) app.get_config_ptr()->default_str("config/default.toml");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    if (print_help) std::cout << app.help();
    return std::nullopt;
  } catch (const CLI::CallForAllHelp&) {
    if (print_help) std::cout << app.help("", CLI::AppFormatMode::All);
    return std::nullopt;
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
  return c;
}

std::vector<std::pair<std::string, std::string>> config_items(const Config& c) {
  auto str = [](auto v) {
    std::ostringstream os;
    os << v;
    return os.str();
  };
  return {{"data_dir", c.data_dir},
          {"no_shuffle", str(c.no_shuffle)},
          {"drop_last", str(c.drop_last)},
          {"epochs", str(c.epochs)},
          {"batch_size", str(c.batch_size)},
          {"global_batch", str(c.global_batch)},
          {"lr", str(c.lr)},
          {"momentum", str(c.momentum)},
          {"seed", str(c.seed)},
          {"threads", str(c.threads)},
          {"max_steps", str(c.max_steps)},
          {"eval", str(c.eval)},
          {"init_weights", c.init_weights},
          {"save_weights", c.save_weights},
          {"allreduce", to_string(c.allreduce)},
          {"bucket_mb", str(c.bucket_mb)},
          {"overlap", str(c.overlap)},
          {"ring_layout", to_string(c.ring_layout)},
          {"wire_dtype", to_string(c.wire_dtype)},
          {"checkpoint", c.checkpoint},
          {"checkpoint_every", str(c.checkpoint_every)},
          {"resume", c.resume},
          {"metrics", c.metrics},
          {"trace", c.trace},
          {"config_file", c.config_file}};
}

}  // namespace cifar
