// parse_config: the defaults (and that config/default.toml agrees with them), every option from the
// command line, a TOML file read with --config and overridden by the command line, the boolean
// dialect (--name / --no-name, name = true|false) and the old spellings it rewrites, --help,
// --version, docs/reference.md's text, and the errors, each of which must be one line naming the
// offending key or value.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <fstream>
#include <initializer_list>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "scratch_dir.hpp"
#include "cifar_mpi/app/config.hpp"
#include "cifar_mpi/app/legacy_spellings.hpp"
#include "cifar_mpi/app/options_text.hpp"
#include "cifar_mpi/app/version_text.hpp"
#include "cifar_mpi/util/error.hpp"

namespace cifar {
namespace {

namespace fs = std::filesystem;

// The source tree, from this file's path (CMake compiles it by its absolute path).
fs::path source_dir() { return fs::path(__FILE__).parent_path().parent_path().parent_path(); }

using testing::ScratchDir;

// Runs the test body with the working directory set to `dir` (parse_config reads
// config/default.toml relative to it), restoring the previous one afterwards.
class ScopedCwd {
 public:
  explicit ScopedCwd(const fs::path& dir) : old_(fs::current_path()) { fs::current_path(dir); }
  ~ScopedCwd() {
    std::error_code ignored;
    fs::current_path(old_, ignored);
  }

 private:
  fs::path old_;
};

std::optional<Config> parse(std::vector<std::string> args, bool speak = false,
                            const std::function<std::string()>& version = {}) {
  args.insert(args.begin(), "cifar_mpi");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  return parse_config(static_cast<int>(args.size()), argv.data(), speak, version);
}

Config parse_ok(const std::vector<std::string>& args) {
  auto c = parse(args);
  EXPECT_TRUE(c.has_value());
  return c.value_or(Config{});
}

std::string join(const std::vector<std::string>& args) {
  std::string s;
  for (const auto& a : args) s += (s.empty() ? "" : " ") + a;
  return s;
}

// Expects parse_config(args) to throw cifar::Error whose what() is one line containing every one
// of `needles`; prints the message so the log shows what a user would read.
std::string expect_error(const std::vector<std::string>& args, std::initializer_list<std::string> needles) {
  SCOPED_TRACE("args: " + join(args));
  std::string msg;
  try {
    parse(args);
    ADD_FAILURE() << "no error for: " << join(args);
  } catch (const Error& e) {
    msg = e.what();
    std::cout << "[  MESSAGE ] " << join(args) << "  ->  " << msg << "\n";
    EXPECT_EQ(msg.find('\n'), std::string::npos) << "not one line: " << msg;
    EXPECT_EQ(msg.find('\r'), std::string::npos) << "not one line: " << msg;
    EXPECT_FALSE(msg.empty());
    for (const auto& n : needles) EXPECT_NE(msg.find(n), std::string::npos) << "'" << n << "' not named in: " << msg;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "threw a non-cifar::Error: " << e.what();
  }
  return msg;
}

void expect_defaults(const Config& c) {
  const Config d;
  EXPECT_EQ(c.data_dir, "data/cifar-10-batches-bin");
  EXPECT_EQ(c.data_dir, d.data_dir);
  EXPECT_TRUE(c.shuffle);
  EXPECT_FALSE(c.drop_last);
  EXPECT_EQ(c.epochs, 1);
  EXPECT_EQ(c.batch_size, 128u);
  EXPECT_EQ(c.global_batch, 0u);
  EXPECT_FLOAT_EQ(c.lr, 0.01f);
  EXPECT_FLOAT_EQ(c.momentum, 0.9f);
  EXPECT_EQ(c.seed, 42u);
  EXPECT_EQ(c.threads, 1);
  EXPECT_EQ(c.max_steps, 0);
  EXPECT_TRUE(c.eval);
  EXPECT_EQ(c.log_every, 50);
  EXPECT_EQ(c.init_weights, "");
  EXPECT_EQ(c.save_weights, "");
  EXPECT_EQ(c.allreduce, AllreduceStrategy::mpi);
  EXPECT_DOUBLE_EQ(c.bucket_mb, 0.0);  // auto
  EXPECT_EQ(find_option("bucket_mb")->value(c), "auto");
  EXPECT_FALSE(c.overlap);
  EXPECT_EQ(c.metrics, "");
  EXPECT_EQ(c.trace, "");
  EXPECT_FALSE(c.force);
}

TEST(ConfigTest, DefaultsWithoutAnyFile) {
  ScratchDir dir;  // no config/default.toml here
  ScopedCwd cwd(dir.path());
  const Config c = parse_ok({});
  expect_defaults(c);
  EXPECT_EQ(c.config_file, "");
}

TEST(ConfigTest, DefaultTomlInCwdIsReadAndAgreesWithTheStruct) {
  const fs::path toml = source_dir() / "config" / "default.toml";
  ASSERT_TRUE(fs::exists(toml)) << toml;
  ScratchDir dir;
  fs::create_directories(dir.path() / "config");
  fs::copy_file(toml, dir.path() / "config" / "default.toml");
  ScopedCwd cwd(dir.path());
  const Config c = parse_ok({});
  expect_defaults(c);
  EXPECT_EQ(c.config_file, "config/default.toml");
}

TEST(ConfigTest, ExplicitDefaultTomlAgreesWithTheStruct) {
  const fs::path toml = source_dir() / "config" / "default.toml";
  ASSERT_TRUE(fs::exists(toml)) << toml;
  const Config c = parse_ok({"--config", toml.string()});
  expect_defaults(c);
  EXPECT_EQ(c.config_file, toml.string());
}

TEST(ConfigTest, EveryOptionFromTheCommandLine) {
  const Config c = parse_ok({"--data-dir", "/some/where",
                             "--epochs", "7",
                             "--batch-size", "64",
                             "--lr", "0.125",
                             "--momentum", "0.5",
                             "--seed", "1234567890123",
                             "--threads", "3",
                             "--max-steps", "99",
                             "--no-shuffle",
                             "--drop-last",
                             "--init-weights", "in.h5",
                             "--save-weights", "out.h5",
                             "--allreduce", "ring",
                             "--bucket-mb", "0.5",
                             "--overlap",
                             "--metrics", "m.h5",
                             "--trace", "t.json",
                             "--force",
                             "--no-eval",
                             "--nesterov",
                             "--log-every", "5"});
  EXPECT_EQ(c.data_dir, "/some/where");
  EXPECT_EQ(c.epochs, 7);
  EXPECT_EQ(c.batch_size, 64u);
  EXPECT_EQ(c.global_batch, 0u);
  EXPECT_EQ(parse_ok({"--global-batch", "256"}).global_batch, 256u);
  EXPECT_FLOAT_EQ(c.lr, 0.125f);
  EXPECT_FLOAT_EQ(c.momentum, 0.5f);
  EXPECT_EQ(c.seed, 1234567890123u);
  EXPECT_EQ(c.threads, 3);
  EXPECT_EQ(c.max_steps, 99);
  EXPECT_FALSE(c.shuffle);
  EXPECT_TRUE(c.drop_last);
  EXPECT_EQ(c.init_weights, "in.h5");
  EXPECT_EQ(c.save_weights, "out.h5");
  EXPECT_EQ(c.allreduce, AllreduceStrategy::ring);
  EXPECT_DOUBLE_EQ(c.bucket_mb, 0.5);
  EXPECT_TRUE(c.overlap);
  EXPECT_EQ(c.metrics, "m.h5");
  EXPECT_EQ(c.trace, "t.json");
  EXPECT_TRUE(c.force);
  EXPECT_FALSE(c.eval);
  EXPECT_TRUE(c.nesterov);
  EXPECT_EQ(c.log_every, 5);
}

TEST(ConfigTest, AllreduceStrategies) {
  EXPECT_EQ(parse_ok({"--allreduce", "naive"}).allreduce, AllreduceStrategy::naive);
  EXPECT_EQ(parse_ok({"--allreduce", "mpi"}).allreduce, AllreduceStrategy::mpi);
  EXPECT_EQ(parse_ok({"--allreduce", "ring"}).allreduce, AllreduceStrategy::ring);
  EXPECT_EQ(parse_ok({"--allreduce", "rhd"}).allreduce, AllreduceStrategy::rhd);
  EXPECT_EQ(to_string(AllreduceStrategy::naive), "naive");
  EXPECT_EQ(to_string(AllreduceStrategy::mpi), "mpi");
  EXPECT_EQ(to_string(AllreduceStrategy::ring), "ring");
  EXPECT_EQ(to_string(AllreduceStrategy::rhd), "rhd");
}

TEST(ConfigTest, RingLayouts) {
  EXPECT_EQ(parse_ok({}).ring_layout, cifar::RingLayout::hosts);
  EXPECT_EQ(parse_ok({"--ring-layout", "flat"}).ring_layout, cifar::RingLayout::flat);
  EXPECT_EQ(parse_ok({"--ring-layout", "hosts"}).ring_layout, cifar::RingLayout::hosts);
  EXPECT_EQ(to_string(cifar::RingLayout::flat), "flat");
  expect_error({"--ring-layout", "tree"}, {"--ring-layout", "tree"});
  expect_error({"--ring-layout", "0"}, {"--ring-layout", "0"});  // not the enum's number
}

TEST(ConfigTest, Balance) {
  using cifar::Config;
  EXPECT_EQ(parse_ok({}).balance, Config::Balance::fixed);
  EXPECT_EQ(parse_ok({"--balance", "dynamic"}).balance, Config::Balance::dynamic);
  EXPECT_EQ(parse_ok({"--balance", "static"}).balance, Config::Balance::fixed);
  EXPECT_EQ(to_string(Config::Balance::fixed), "static");
  EXPECT_EQ(to_string(Config::Balance::dynamic), "dynamic");
  expect_error({"--balance", "guided"}, {"--balance", "guided"});
  expect_error({"--balance", "1"}, {"--balance", "1"});  // not the enum's number
  // Dynamic balance cuts the step into chunks of its own: passes of a fixed size make no sense.
  expect_error({"--balance", "dynamic", "--micro-batch", "16"}, {"--balance dynamic", "--micro-batch 16"});
  EXPECT_EQ(parse_ok({"--balance", "dynamic", "--micro-batch", "0"}).micro_batch, 0u);
}

TEST(ConfigTest, WireDtypes) {
  EXPECT_EQ(parse_ok({}).wire_dtype, cifar::WireDtype::fp32);
  EXPECT_EQ(parse_ok({"--wire-dtype", "bf16"}).wire_dtype, cifar::WireDtype::bf16);
  EXPECT_EQ(parse_ok({"--wire-dtype", "fp16"}).wire_dtype, cifar::WireDtype::fp16);
  EXPECT_EQ(parse_ok({"--wire-dtype", "fp32"}).wire_dtype, cifar::WireDtype::fp32);
  expect_error({"--wire-dtype", "fp8"}, {"--wire-dtype", "fp8"});
  expect_error({"--wire-dtype", "1"}, {"--wire-dtype", "1"});  // not the enum's number
}

TEST(ConfigTest, SendingLess) {
  const Config d = parse_ok({});
  EXPECT_EQ(d.compress, cifar::Compression::none);
  EXPECT_EQ(d.compress_rank, 4u);
  EXPECT_EQ(d.compress_start, -1);  // auto
  EXPECT_EQ(d.local_sgd, 0u);
  const Config c = parse_ok({"--compress", "powersgd", "--compress-rank", "2", "--compress-start", "0"});
  EXPECT_EQ(c.compress, cifar::Compression::powersgd);
  EXPECT_EQ(c.compress_rank, 2u);
  EXPECT_EQ(c.compress_start, 0);
  EXPECT_EQ(parse_ok({"--local-sgd", "8", "--local-sgd-start", "auto"}).local_sgd_start, -1);
  EXPECT_EQ(cifar::start_step(-1, 196), 20u);  // auto: a tenth of the first epoch, rounded up
  EXPECT_EQ(cifar::start_step(7, 196), 7u);
  expect_error({"--compress-rank", "0"}, {"--compress-rank"});
  expect_error({"--compress-start", "-1"}, {"--compress-start", "-1"});
  expect_error({"--compress", "topk"}, {"--compress", "topk"});
  expect_error({"--local-sgd", "4", "--compress", "powersgd"}, {"--local-sgd 4", "--compress powersgd"});
}

// A value option given twice takes the last, as a switch does (CLI11 said "At Most 1 required
// but received 2"); every value given is still checked.
TEST(ConfigTest, RepeatedValueOptionTakesTheLast) {
  const Config c = parse_ok({"--lr", "0.1", "--lr", "0.2", "--allreduce", "ring", "--allreduce=naive",
                             "--bucket-mb", "2", "--bucket-mb", "auto", "--checkpoint-every", "5m",
                             "--checkpoint-every", "10", "--compress-start", "3", "--compress-start", "auto"});
  EXPECT_FLOAT_EQ(c.lr, 0.2f);
  EXPECT_EQ(c.allreduce, AllreduceStrategy::naive);
  EXPECT_DOUBLE_EQ(c.bucket_mb, 0.0);
  EXPECT_EQ(c.checkpoint_every, 10);
  EXPECT_DOUBLE_EQ(c.checkpoint_seconds, 0.0);
  EXPECT_EQ(c.compress_start, -1);
  expect_error({"--lr", "abc", "--lr", "0.2"}, {"--lr", "abc"});
  expect_error({"--lr", "0.2", "--lr", "abc"}, {"--lr", "abc"});
  // two per-rank batches are one option: the last; with --global-batch still refused
  EXPECT_EQ(parse_ok({"--batch-size", "16", "--batch-size", "32"}).batch_size, 32u);
}

TEST(ConfigTest, MetaLabels) {
  const Config c = parse_ok({"--meta", "link_rate=100mbit", "--meta", "hosts=2", "--meta", "note=a=b c"});
  ASSERT_EQ(c.meta.size(), 3u);
  EXPECT_EQ(c.meta[0], (std::pair<std::string, std::string>{"link_rate", "100mbit"}));
  EXPECT_EQ(c.meta[1], (std::pair<std::string, std::string>{"hosts", "2"}));
  EXPECT_EQ(c.meta[2], (std::pair<std::string, std::string>{"note", "a=b c"}));  // first '=' splits
  expect_error({"--meta", "novalue"}, {"--meta", "novalue", "KEY=VALUE"});
  expect_error({"--meta", "=x"}, {"--meta", "=x"});
  expect_error({"--meta", "a b=c"}, {"--meta", "a b"});
}

// Every switch of the table, the ones the dialect names: --name on, --no-name off, the last wins.
TEST(ConfigTest, EverySwitchAndItsNoForm) {
  const std::vector<std::pair<std::string, bool Config::*>> switches{
      {"shuffle", &Config::shuffle}, {"drop-last", &Config::drop_last}, {"eval", &Config::eval},
      {"nesterov", &Config::nesterov}, {"overlap", &Config::overlap}, {"overlap-trial", &Config::overlap_trial},
      {"sync-bn", &Config::sync_bn},   {"force", &Config::force}};
  std::vector<std::string> in_table;
  for (const auto& o : config_options())
    if (o.is_switch) in_table.push_back(o.name);
  EXPECT_EQ(in_table.size(), switches.size());
  for (const auto& [name, member] : switches) {
    SCOPED_TRACE(name);
    EXPECT_NE(std::find(in_table.begin(), in_table.end(), name), in_table.end());
    EXPECT_TRUE(parse_ok({"--" + name}).*member);
    EXPECT_FALSE(parse_ok({"--no-" + name}).*member);
    EXPECT_TRUE(parse_ok({"--no-" + name, "--" + name}).*member);
    EXPECT_FALSE(parse_ok({"--" + name, "--no-" + name}).*member);
  }
  // the defaults the dialect states
  const Config d = parse_ok({});
  EXPECT_TRUE(d.shuffle);
  EXPECT_FALSE(d.drop_last);
  EXPECT_TRUE(d.eval);
  EXPECT_FALSE(d.nesterov);
  EXPECT_FALSE(d.overlap);
  EXPECT_TRUE(d.overlap_trial);
  EXPECT_FALSE(d.sync_bn);
  EXPECT_FALSE(d.force);
  EXPECT_EQ(parse_ok({"--lr=0.5"}).lr, 0.5f);
}

TEST(ConfigTest, SwitchesInTomlAreTrueOrFalse) {
  ScratchDir dir;
  const fs::path off = dir.write("off.toml",
                                 "shuffle = false\ndrop-last = false\neval = false\nnesterov = false\n"
                                 "overlap = false\noverlap-trial = false\nsync-bn = false\nforce = false\n");
  const fs::path on = dir.write("on.toml",
                                "shuffle = true\ndrop-last = true\neval = true\nnesterov = true\n"
                                "overlap = true\noverlap-trial = true\nsync-bn = true\nforce = true\n");
  const Config f = parse_ok({"--config", off.string()});
  EXPECT_FALSE(f.shuffle);
  EXPECT_FALSE(f.drop_last);
  EXPECT_FALSE(f.eval);
  EXPECT_FALSE(f.nesterov);
  EXPECT_FALSE(f.overlap);
  EXPECT_FALSE(f.overlap_trial);
  EXPECT_FALSE(f.sync_bn);
  EXPECT_FALSE(f.force);
  const Config t = parse_ok({"--config", on.string()});
  EXPECT_TRUE(t.shuffle);
  EXPECT_TRUE(t.drop_last);
  EXPECT_TRUE(t.eval);
  EXPECT_TRUE(t.nesterov);
  EXPECT_TRUE(t.overlap);
  EXPECT_TRUE(t.overlap_trial);
  EXPECT_TRUE(t.sync_bn);
  EXPECT_TRUE(t.force);
  // the command line wins over the file, either way
  const Config o = parse_ok({"--config", on.string(), "--no-overlap", "--no-shuffle"});
  EXPECT_FALSE(o.overlap);
  EXPECT_FALSE(o.shuffle);
  EXPECT_TRUE(parse_ok({"--config", off.string(), "--eval"}).eval);
}

// The spellings from before the dialect mean what the new ones do, and each says so on one line.
TEST(ConfigTest, OldCommandLineSpellingsMeanTheSameWithOneWarningEach) {
  struct Case {
    std::vector<std::string> old_args, new_args;
  };
  const std::vector<Case> cases{
      {{"--eval", "false"}, {"--no-eval"}},      {{"--eval", "true"}, {"--eval"}},
      {{"--eval", "0"}, {"--no-eval"}},          {{"--eval", "1"}, {"--eval"}},
      {{"--eval", "off"}, {"--no-eval"}},        {{"--eval", "on"}, {"--eval"}},
      {{"--eval=false"}, {"--no-eval"}},         {{"--eval=0"}, {"--no-eval"}},
      {{"--eval=true"}, {"--eval"}},             {{"--overlap", "on"}, {"--overlap"}},
      {{"--overlap", "off"}, {"--no-overlap"}},  {{"--overlap", "true"}, {"--overlap"}},
      {{"--overlap", "false"}, {"--no-overlap"}}, {{"--overlap=on"}, {"--overlap"}},
      {{"--nesterov", "true"}, {"--nesterov"}},  {{"--nesterov", "false"}, {"--no-nesterov"}},
      {{"--drop-last=true"}, {"--drop-last"}},   {{"--no-shuffle=true"}, {"--no-shuffle"}},
  };
  for (const auto& [old_args, new_args] : cases) {
    SCOPED_TRACE(join(old_args));
    const LegacyRewrite r = rewrite_legacy_arguments(old_args);
    EXPECT_EQ(r.args, new_args);
    ASSERT_EQ(r.warnings.size(), 1u);
    EXPECT_NE(r.warnings[0].find("deprecated"), std::string::npos) << r.warnings[0];
    EXPECT_NE(r.warnings[0].find("use " + new_args[0]), std::string::npos) << r.warnings[0];
    std::vector<std::string> with_momentum = old_args;  // --nesterov needs it
    with_momentum.insert(with_momentum.end(), {"--momentum", "0.9"});
    std::vector<std::string> new_with_momentum = new_args;
    new_with_momentum.insert(new_with_momentum.end(), {"--momentum", "0.9"});
    // what the run records (and agrees on, and checkpoints) is the same
    EXPECT_EQ(config_items(parse_ok(with_momentum)), config_items(parse_ok(new_with_momentum)));
    // rank 0 prints the warning: one line on stderr
    ::testing::internal::CaptureStderr();
    parse(with_momentum, true);
    const std::string err = ::testing::internal::GetCapturedStderr();
    EXPECT_EQ(err, "cifar_mpi: warning: " + r.warnings[0] + "\n");
    // the other ranks say nothing
    ::testing::internal::CaptureStderr();
    parse(with_momentum, false);
    EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
  }
  // the new spellings warn about nothing
  EXPECT_TRUE(rewrite_legacy_arguments({"--no-eval", "--overlap", "--no-shuffle", "--lr", "1"}).warnings.empty());
}

TEST(ConfigTest, OldTomlSpellingsMeanTheSameWithOneWarningEach) {
  ScratchDir dir;
  struct Case {
    std::string old_toml, new_toml, warning;
  };
  const std::vector<Case> cases{
      {"overlap = \"on\"\n", "overlap = true\n", "'overlap = \"on\"' is deprecated: use overlap = true"},
      {"overlap = \"off\"\n", "overlap = false\n", "'overlap = \"off\"' is deprecated: use overlap = false"},
      {"no-shuffle = true\n", "shuffle = false\n", "'no-shuffle = true' is deprecated: use shuffle = false"},
      {"no-shuffle = false\n", "shuffle = true\n", "'no-shuffle = false' is deprecated: use shuffle = true"},
      {"eval = 0\n", "eval = false\n", "'eval = 0' is deprecated: use eval = false"},
  };
  int n = 0;
  for (const auto& [old_toml, new_toml, warning] : cases) {
    SCOPED_TRACE(old_toml);
    const fs::path old_file = dir.write("old" + std::to_string(n) + ".toml", old_toml);
    const fs::path new_file = dir.write("new" + std::to_string(n++) + ".toml", new_toml);
    auto old_items = config_items(parse_ok({"--config", old_file.string()}));
    auto new_items = config_items(parse_ok({"--config", new_file.string()}));
    old_items.pop_back();  // config_file
    new_items.pop_back();
    EXPECT_EQ(old_items, new_items);
    ::testing::internal::CaptureStderr();
    parse({"--config", old_file.string()}, true);
    EXPECT_EQ(::testing::internal::GetCapturedStderr(),
              "cifar_mpi: warning: " + old_file.string() + ": " + warning + "\n");
    ::testing::internal::CaptureStderr();
    parse({"--config", new_file.string()}, true);
    EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
  }
  // the command line still wins over an old spelling in the file
  const fs::path on = dir.write("on.toml", "overlap = \"on\"\n");
  EXPECT_FALSE(parse_ok({"--config", on.string(), "--no-overlap"}).overlap);
}

// A switch takes no value, except the old spellings' booleans; anything else is one line naming it.
TEST(ConfigTest, SwitchGivenAValue) {
  expect_error({"--eval", "maybe"}, {"--eval", "maybe"});
  expect_error({"--eval=maybe"}, {"--eval", "maybe"});
  expect_error({"--overlap", "sometimes"}, {"--overlap", "sometimes"});
  expect_error({"--nesterov", "2"}, {"--nesterov", "2"});
  expect_error({"--force", "yes"}, {"--force", "yes", "--no-force"});  // a flag before the dialect too
  expect_error({"--drop-last", "true"}, {"--drop-last", "true"});
  expect_error({"--no-eval", "false"}, {"--no-eval", "false"});
  ScratchDir dir;
  const fs::path toml = dir.write("bad.toml", "overlap = \"maybe\"\n");
  expect_error({"--config", toml.string()}, {toml.string(), "overlap", "maybe"});
}

// In TOML a switch is true or false (or an old spelling, 0 and 1 among them, with a warning):
// CLI11 took any number as a count, so overlap = 2 was on and overlap = -1 off.
TEST(ConfigTest, SwitchInTomlGivenANumberOrWordThatIsNoBoolean) {
  ScratchDir dir;
  int n = 0;
  for (const std::string& line : {"overlap = 2", "overlap = -1", "shuffle = 2", "eval = \"maybe\"",
                                  "no-shuffle = 3", "nesterov = 0.5"}) {
    SCOPED_TRACE(line);
    const fs::path toml = dir.write("b" + std::to_string(n++) + ".toml", line + "\n");
    const std::string key = line.substr(0, line.find(' '));
    std::string value = line.substr(line.find("= ") + 2);
    if (value.front() == '"') value = value.substr(1, value.size() - 2);
    expect_error({"--config", toml.string()}, {toml.string(), "'" + key + "'", "'" + value + "'", "true or false"});
  }
  // the old numbers stay accepted, with their warning
  const fs::path one = dir.write("one.toml", "overlap = 1\n");
  EXPECT_TRUE(parse_ok({"--config", one.string()}).overlap);
}

// --shuffle keeps the key its checkpoints and metrics files have always had: no_shuffle = 1|0.
TEST(ConfigTest, ShuffleIsRecordedAsNoShuffle) {
  const auto value = [](const Config& c, const std::string& key) -> std::string {
    for (const auto& [k, v] : config_items(c))
      if (k == key) return v;
    ADD_FAILURE() << "config_items has no key " << key;
    return "";
  };
  EXPECT_EQ(value(parse_ok({}), "no_shuffle"), "0");
  EXPECT_EQ(value(parse_ok({"--no-shuffle"}), "no_shuffle"), "1");
  EXPECT_EQ(value(parse_ok({"--overlap"}), "overlap"), "1");
  EXPECT_EQ(value(parse_ok({}), "overlap"), "0");
  EXPECT_EQ(value(parse_ok({"--no-eval"}), "eval"), "0");
  ASSERT_NE(find_option("no_shuffle"), nullptr);
  EXPECT_EQ(find_option("no_shuffle")->name, "shuffle");
  EXPECT_TRUE(find_option("no_shuffle")->use & kIdentity);
  EXPECT_EQ(find_option("shuffle"), nullptr);
}

// Two batch sizes on one command line contradict each other; a config file's batch-size yields.
TEST(ConfigTest, BatchSizeAndGlobalBatchOnTheCommandLineAreRefused) {
  const std::string msg = expect_error({"--batch-size", "64", "--global-batch", "256"}, {"--batch-size", "--global-batch"});
  expect_error({"--global-batch=256", "--batch-size=64"}, {"--batch-size", "--global-batch"});
  ScratchDir dir;
  const fs::path toml = dir.write("b.toml", "batch-size = 64\n");
  const Config c = parse_ok({"--config", toml.string(), "--global-batch", "256"});
  EXPECT_EQ(c.global_batch, 256u);
  EXPECT_EQ(c.batch_size, 64u);
  // config/default.toml sets batch-size: --global-batch alone is fine there
  const fs::path defaults = source_dir() / "config" / "default.toml";
  EXPECT_EQ(parse_ok({"--config", defaults.string(), "--global-batch", "256"}).global_batch, 256u);
}

// The batch size on the command line replaces the file's, whichever of the two each names: a
// file's global-batch once overrode a command-line --batch-size without a word.
TEST(ConfigTest, CommandLineBatchSizeReplacesTheFilesGlobalBatch) {
  ScratchDir dir;
  const fs::path global = dir.write("g.toml", "global-batch = 256\n");
  const Config c = parse_ok({"--config", global.string(), "--batch-size", "32"});
  EXPECT_EQ(c.batch_size, 32u);
  EXPECT_EQ(c.global_batch, 0u);
  EXPECT_EQ(parse_ok({"--config", global.string(), "--batch-size=32"}).global_batch, 0u);
  EXPECT_EQ(parse_ok({"--config", global.string()}).global_batch, 256u);  // the file's, when alone
  EXPECT_EQ(parse_ok({"--config", global.string(), "--global-batch", "64"}).global_batch, 64u);
  // the file used by the time-to-accuracy runs sets global-batch
  const fs::path tta = source_dir() / "config" / "time_to_accuracy.toml";
  EXPECT_EQ(parse_ok({"--config", tta.string(), "--batch-size", "32"}).global_batch, 0u);
}

TEST(ConfigTest, TomlFileWithBothBatchSizesIsRefused) {
  ScratchDir dir;
  const fs::path both = dir.write("both.toml", "batch-size = 64\nglobal-batch = 128\n");
  expect_error({"--config", both.string()}, {both.string(), "batch-size", "global-batch"});
  // even when the command line gives one of them: the file contradicts itself
  expect_error({"--config", both.string(), "--batch-size", "8"}, {both.string(), "batch-size", "global-batch"});
}

TEST(ConfigTest, HelpShowsDefaultsUnitsAndExitCodesButNoEnumMaps) {
  ::testing::internal::CaptureStdout();
  EXPECT_FALSE(parse({"--help"}, true).has_value());
  const std::string help = ::testing::internal::GetCapturedStdout();
  EXPECT_EQ(help, options_help_text());
  std::cout << help;
  EXPECT_EQ(help.find("->"), std::string::npos);  // CLI11's {dynamic->1,static->0}
  EXPECT_EQ(help.find("BOOLEAN"), std::string::npos);
  EXPECT_EQ(help.find("{false}"), std::string::npos);
  for (const auto& o : config_options()) {
    SCOPED_TRACE(o.name);
    EXPECT_NE(help.find("--" + o.name), std::string::npos);
    if (o.is_switch) EXPECT_NE(help.find("--" + o.name + ", --no-" + o.name), std::string::npos);
    EXPECT_FALSE(o.help.empty());
    EXPECT_FALSE(o.group.empty());
    EXPECT_FALSE(o.default_text.empty());
  }
  for (const char* needle : {"--version", "--config FILE", "--batch-size B", "[images per rank; default 128]",
                             "--stall-timeout S", "[s; default 300]", "--bucket-mb MB|auto", "[MB; default auto]",
                             "--allreduce naive|mpi|ring|rhd|auto", "[default mpi]", "[default on]",
                             "default results/run-<time>-np<N>.h5", "Exit codes:"})
    EXPECT_NE(help.find(needle), std::string::npos) << needle;
  for (const auto& [code, meaning] : kExitCodes)
    EXPECT_NE(help.find("  " + std::to_string(code) + " "), std::string::npos) << code;
  EXPECT_EQ(std::size(kExitCodes), 4u);
  for (const int code : {0, 1, 75, 76})
    EXPECT_TRUE(std::any_of(std::begin(kExitCodes), std::end(kExitCodes), [&](const auto& e) { return e.code == code; }));
  // the other ranks print nothing
  ::testing::internal::CaptureStdout();
  parse({"--help"}, false);
  EXPECT_EQ(::testing::internal::GetCapturedStdout(), "");
}

TEST(ConfigTest, ReferenceListsEveryOptionWithItsTomlKeyAndGroup) {
  const std::string md = options_reference_markdown();
  for (const auto& o : config_options()) {
    SCOPED_TRACE(o.name);
    EXPECT_NE(md.find("## " + o.group + "\n"), std::string::npos);
    if (o.is_switch) {
      EXPECT_NE(md.find("| `--" + o.name + "`, `--no-" + o.name + "` |"), std::string::npos);
      EXPECT_NE(md.find("`" + o.name + " = true\\|false`"), std::string::npos);
    } else {
      EXPECT_NE(md.find("| `--" + o.name), std::string::npos);
      EXPECT_NE(md.find(" | `" + o.name + "` | "), std::string::npos);
    }
  }
  EXPECT_NE(md.find("cmake --build build --target reference"), std::string::npos);
  EXPECT_NE(md.find("## Exit codes"), std::string::npos);
  EXPECT_NE(md.find("| 75 |"), std::string::npos);
  EXPECT_NE(md.find("`results/run-<time>-np<N>.h5`"), std::string::npos);
}

TEST(ConfigTest, VersionNamesTheBuildOneDnnAndMpi) {
  ::testing::internal::CaptureStdout();
  // --version answers before anything else is checked
  EXPECT_FALSE(parse({"--lr", "-1", "--version"}, true, [] { return std::string("v\n"); }).has_value());
  EXPECT_EQ(::testing::internal::GetCapturedStdout(), "v\n");
  const std::string v = version_text();
  std::cout << v;
  EXPECT_EQ(v.rfind(std::string("cifar_mpi ") + CIFAR_VERSION + "\n", 0), 0u) << v;
  EXPECT_NE(v.find(std::string("git commit ") + CIFAR_GIT_COMMIT), std::string::npos) << v;
  EXPECT_NE(v.find("oneDNN 2."), std::string::npos) << v;  // CMakeLists.txt asks for DNNL 2.6+
  EXPECT_NE(v.find(", ISA in use "), std::string::npos) << v;
  EXPECT_NE(v.find("MPI library "), std::string::npos) << v;
  EXPECT_EQ(std::count(v.begin(), v.end(), '\n'), 4) << v;
}

TEST(ConfigTest, ConfigItemsListEveryKey) {
  const Config c = parse_ok({"--allreduce", "naive", "--data-dir", "/d"});
  const auto items = config_items(c);
  auto value = [&](const std::string& key) -> std::string {
    for (const auto& [k, v] : items)
      if (k == key) return v;
    ADD_FAILURE() << "config_items has no key " << key;
    return "";
  };
  EXPECT_EQ(value("allreduce"), "naive");
  EXPECT_EQ(value("data_dir"), "/d");
  EXPECT_EQ(value("batch_size"), "128");
  EXPECT_EQ(value("epochs"), "1");
}

TEST(ConfigTest, TomlFileIsReadAndTheCommandLineWins) {
  ScratchDir dir;
  const fs::path toml = dir.write("run.toml",
                                  "# a run's settings\n"
                                  "data-dir = \"/from/toml\"\n"
                                  "epochs = 3\n"
                                  "batch-size = 32\n"
                                  "lr = 0.5\n"
                                  "momentum = 0.25\n"
                                  "seed = 7\n"
                                  "threads = 2\n"
                                  "max-steps = 11\n"
                                  "shuffle = false\n"
                                  "drop-last = true\n"
                                  "eval = false\n"
                                  "allreduce = \"ring\"\n"
                                  "bucket-mb = 4.0\n"
                                  "overlap = true\n"
                                  "save-weights = \"w.h5\"\n");
  const Config f = parse_ok({"--config", toml.string()});
  EXPECT_EQ(f.config_file, toml.string());
  EXPECT_EQ(f.data_dir, "/from/toml");
  EXPECT_EQ(f.epochs, 3);
  EXPECT_EQ(f.batch_size, 32u);
  EXPECT_FLOAT_EQ(f.lr, 0.5f);
  EXPECT_FLOAT_EQ(f.momentum, 0.25f);
  EXPECT_EQ(f.seed, 7u);
  EXPECT_EQ(f.threads, 2);
  EXPECT_EQ(f.max_steps, 11);
  EXPECT_FALSE(f.shuffle);
  EXPECT_TRUE(f.drop_last);
  EXPECT_FALSE(f.eval);
  EXPECT_EQ(f.allreduce, AllreduceStrategy::ring);
  EXPECT_DOUBLE_EQ(f.bucket_mb, 4.0);
  EXPECT_TRUE(f.overlap);
  EXPECT_EQ(f.save_weights, "w.h5");

  // The command line overrides the file, whichever side of --config it is on.
  const Config o = parse_ok({"--lr", "0.25", "--config", toml.string(), "--allreduce", "naive", "--epochs", "9",
                             "--no-overlap", "--eval"});
  EXPECT_FLOAT_EQ(o.lr, 0.25f);
  EXPECT_EQ(o.allreduce, AllreduceStrategy::naive);
  EXPECT_EQ(o.epochs, 9);
  EXPECT_FALSE(o.overlap);
  EXPECT_TRUE(o.eval);
  EXPECT_EQ(o.batch_size, 32u);  // not overridden: still the file's
  EXPECT_EQ(o.data_dir, "/from/toml");
}

TEST(ConfigTest, HelpReturnsNullopt) {
  EXPECT_FALSE(parse({"--help"}).has_value());
  EXPECT_FALSE(parse({"-h"}).has_value());
  EXPECT_FALSE(parse({"--lr", "0.1", "--help"}).has_value());
}

TEST(ConfigTest, UnknownOption) { expect_error({"--batchsize", "3"}, {"--batchsize"}); }

TEST(ConfigTest, BatchSizeZero) { expect_error({"--batch-size", "0"}, {"--batch-size", "0"}); }

TEST(ConfigTest, NegativeLearningRate) { expect_error({"--lr", "-1"}, {"--lr", "-1"}); }

TEST(ConfigTest, ZeroLearningRate) { expect_error({"--lr", "0"}, {"--lr"}); }

TEST(ConfigTest, NonNumericLearningRate) { expect_error({"--lr", "abc"}, {"--lr", "abc"}); }

TEST(ConfigTest, ZeroEpochs) { expect_error({"--epochs", "0"}, {"--epochs", "0"}); }

TEST(ConfigTest, UnknownAllreduce) { expect_error({"--allreduce", "foo"}, {"--allreduce", "foo"}); }

TEST(ConfigTest, BadOverlap) { expect_error({"--overlap", "maybe"}, {"--overlap", "maybe"}); }

// Options that did nothing, silently: a pass larger than the batch (clamped to it) and a step
// length without the step schedule (ignored).
TEST(ConfigTest, OptionsThatWouldDoNothingAreRefused) {
  expect_error({"--micro-batch", "256"}, {"--micro-batch 256", "per-rank batch", "--batch-size 128", "at most 128"});
  expect_error({"--micro-batch", "65", "--batch-size", "64"}, {"--micro-batch 65", "at most 64"});
  EXPECT_EQ(parse_ok({"--micro-batch", "128"}).micro_batch, 128u);  // the whole batch: one pass
  // with --global-batch the per-rank batch is known at start-up (run_setup.cpp checks it there)
  EXPECT_EQ(parse_ok({"--micro-batch", "256", "--global-batch", "512"}).micro_batch, 256u);
  expect_error({"--lr-step-epochs", "2"}, {"--lr-step-epochs 2", "needs --lr-schedule step", "constant"});
  expect_error({"--lr-step-epochs", "2", "--lr-schedule", "cosine"}, {"--lr-step-epochs 2", "cosine"});
  EXPECT_EQ(parse_ok({"--lr-step-epochs", "2", "--lr-schedule", "step"}).lr_step_epochs, 2u);
  EXPECT_EQ(parse_ok({"--lr-step-epochs", "0"}).lr_step_epochs, 0u);
}

TEST(ConfigTest, CombinationsNameTheDialect) {
  expect_error({"--target-accuracy", "0.7", "--no-eval"}, {"--target-accuracy", "needs --eval"});
  expect_error({"--eval-every", "5", "--no-eval"}, {"--eval-every", "needs --eval"});
  expect_error({"--nesterov", "--momentum", "0"}, {"--nesterov needs --momentum > 0"});
}

// Found by fuzzing: CLI::Range let NaN through, and a double check let through values the float
// option cannot hold (inf, or 1e-50 which rounds to 0).
TEST(ConfigTest, NonFiniteAndUnrepresentableValues) {
  expect_error({"--momentum", "nan"}, {"--momentum", "nan"});
  expect_error({"--bucket-mb", "nan"}, {"--bucket-mb", "nan"});
  expect_error({"--lr", "inf"}, {"--lr", "inf"});
  expect_error({"--lr", "1e39"}, {"--lr", "1e39"});
  expect_error({"--lr", "1e-50"}, {"--lr", "1e-50"});
}

// A count is a whole number: CLI11 let 1e3 through the range check and then failed with "Could
// not convert: --seed = 1e3".
TEST(ConfigTest, CountsAreWholeNumbers) {
  for (const std::string name : {"seed", "epochs", "batch-size", "threads", "max-steps", "micro-batch"})
    for (const std::string value : {"1e3", "2.5", "12abc", "+"})
      expect_error({"--" + name, value}, {"--" + name, "'" + value + "'", "whole number"});
  EXPECT_EQ(parse_ok({"--seed", "+7"}).seed, 7u);
}

TEST(ConfigTest, ZeroThreads) { expect_error({"--threads", "0"}, {"--threads", "0"}); }

TEST(ConfigTest, OtherBadValues) {
  expect_error({"--momentum", "1"}, {"--momentum"});
  expect_error({"--max-steps", "-3"}, {"--max-steps", "-3"});
  expect_error({"--bucket-mb", "0"}, {"--bucket-mb"});
  expect_error({"--eval", "maybe"}, {"--eval", "maybe"});
  expect_error({"--epochs", "many"}, {"--epochs", "many"});
  expect_error({"--epochs"}, {"--epochs"});
  expect_error({"--log-every", "0"}, {"--log-every"});
}

TEST(ConfigTest, UnknownKeyInTomlFile) {
  ScratchDir dir;
  const fs::path toml = dir.write("bad.toml", "epochs = 2\nbatchsize = 3\n");
  expect_error({"--config", toml.string()}, {"batchsize"});
}

TEST(ConfigTest, BadValueInTomlFile) {
  ScratchDir dir;
  const fs::path toml = dir.write("bad.toml", "epochs = 2\nlr = -2\n");
  expect_error({"--config", toml.string()}, {"lr", "-2"});
}

// Each fault of a TOML file is one line naming the file, then the line or the key and the value.
// CLI11's reader said "--lr: 'abc' is not a number" (no file), "--lr: At Most 1 required but
// received 2" for a list or a repeated key, "unknown key 'train.++'" for a table, "Could not
// convert: --seed = 1e3", and read `lr = ` as an empty string. What toml++ refuses as TOML is its
// line, quoted, and toml++'s words.
TEST(ConfigTest, TomlFaultsNameTheFileTheKeyAndTheValue) {
  ScratchDir dir;
  struct Case {
    std::string toml;
    std::vector<std::string> needles;
  };
  const std::vector<Case> cases{
      {"lr = \"abc\"\n", {"key 'lr'", "'abc' is not a number"}},
      {"epochs = 2\nlr = -2\n", {"line 2", "key 'lr'", "-2"}},
      {"lr = [1,2]\n", {"key 'lr'", "not a list", "[1,2]"}},
      {"lr = 0.1\nepochs = 2\nlr = 0.2\n", {"line 3", "key 'lr'", "again", "line 1"}},
      {"shuffle = true\nno-shuffle = true\n", {"line 2", "no-shuffle", "again"}},
      {"[train]\nlr = 0.1\n", {"line 1", "[train]", "not supported", "top level"}},
      {"[[runs]]\n", {"line 1", "[[runs]]", "not supported"}},
      {"train.lr = 0.1\n", {"line 1", "train.lr", "not supported"}},
      {"seed = 1e3\n", {"key 'seed'", "'1e3' is not a whole number"}},
      {"eval = \"maybe\"\n", {"key 'eval'", "'maybe'", "true or false"}},
      {"eval = maybe\n", {"line 1", "'eval = maybe'", "value"}},
      {"# comment\nlr = \n", {"line 2", "'lr ='", "expected value"}},
      {"lr = 0.1 0.2\n", {"line 1", "'lr = 0.1 0.2'"}},
      {"data-dir = \"x\n", {"line 1", "'data-dir = \"x'", "string"}},
      {"meta = [\"a=b\",\n", {"line 1", "'meta = [\"a=b\",'", "end-of-file"}},
      {"x = {a = 1}\n", {"line 1", "inline tables"}},
      {"epochs\n", {"line 1", "'epochs'", "expected '='"}},
      {"epochs = 2\nbatchsize = 3\n", {"line 2", "unknown key 'batchsize'"}},
      {"allreduce = \"foo\"\n", {"key 'allreduce'", "foo"}},
      {"meta = [\"ab\"]\n", {"key 'meta'", "'ab' is not KEY=VALUE"}},
  };
  int n = 0;
  for (const auto& [toml, needles] : cases) {
    SCOPED_TRACE(toml);
    const fs::path file = dir.write("f" + std::to_string(n++) + ".toml", toml);
    const std::string msg = expect_error({"--config", file.string()}, {file.string() + ": "});
    for (const auto& needle : needles) EXPECT_NE(msg.find(needle), std::string::npos) << "'" << needle << "' not in: " << msg;
  }
}

// What the strict reader takes: TOML's strings, numbers and comments, and a list for --meta.
TEST(ConfigTest, TomlValuesTheReaderTakes) {
  ScratchDir dir;
  const fs::path toml = dir.write("ok.toml",
                                  "\xEF\xBB\xBF# a byte order mark, a comment, a blank line\n\n"
                                  "data-dir = 'C:\\literal'   # no escapes in a literal string\r\n"
                                  "\"trace\" = \"t\\\"q.json\"\n"
                                  "  seed=0x10\n"
                                  "max-steps = 1_000\n"
                                  "lr = +0.5\n"
                                  "momentum = 5e-1\n"
                                  "metrics = \"\"\"r.h5\"\"\"\n"
                                  "meta = [\"a=b\",\n        'c=d',]  # a list over two lines\n"
                                  "eval = false\n");
  const Config c = parse_ok({"--config", toml.string()});
  EXPECT_EQ(c.data_dir, "C:\\literal");
  EXPECT_EQ(c.trace, "t\"q.json");
  EXPECT_EQ(c.seed, 16u);
  EXPECT_EQ(c.max_steps, 1000);
  EXPECT_FLOAT_EQ(c.lr, 0.5f);
  EXPECT_FLOAT_EQ(c.momentum, 0.5f);
  EXPECT_EQ(c.metrics, "r.h5");  // a multi-line basic string (an empty one is refused: EmptyFileNames)
  ASSERT_EQ(c.meta.size(), 2u);
  EXPECT_EQ(c.meta[1], (std::pair<std::string, std::string>{"c", "d"}));
  EXPECT_FALSE(c.eval);
}

// An empty file or folder name is refused on the command line and in a file, naming the option:
// it used to mean "none" or the default, silently.
TEST(ConfigTest, EmptyFileNames) {
  expect_error({"--metrics", ""}, {"--metrics", "an empty name"});
  expect_error({"--resume", ""}, {"--resume", "an empty name"});
  ScratchDir dir;
  const fs::path toml = dir.write("empty.toml", "init-weights = ''\n");
  expect_error({"--config", toml.string()}, {"line 1", "init-weights", "an empty name"});
}

// Every configuration the project ships is read without a fault.
TEST(ConfigTest, EveryShippedConfigFileIsRead) {
  for (const auto& entry : fs::directory_iterator(source_dir() / "config")) {
    if (entry.path().extension() != ".toml") continue;
    SCOPED_TRACE(entry.path().string());
    EXPECT_EQ(parse_ok({"--config", entry.path().string()}).config_file, entry.path().string());
  }
}

TEST(ConfigTest, MissingConfigFile) {
  ScratchDir dir;
  const fs::path toml = dir.path() / "does_not_exist.toml";
  expect_error({"--config", toml.string()}, {toml.string()});
}

// Found by these tests, not yet fixed in src/app/config.cpp: a negative --seed wraps around to a
// huge uint64_t, and --allreduce accepts the enum's integer values. Enable when fixed.
// Above the largest value: "out of range", naming the bound (it once said "must be >= 0").
TEST(ConfigTest, TooLargeValuesNameTheRange) {
  expect_error({"--seed", "99999999999999999999"}, {"--seed", "'99999999999999999999' is out of range", "9.2e+18"});
  expect_error({"--max-steps", "10000000000000000000"}, {"--max-steps", "out of range", "9.2e+18"});
  expect_error({"--lr", "1e39"}, {"--lr", "out of range", "> 0", "3.40282e+38"});
  expect_error({"--momentum", "1"}, {"--momentum", "out of range", "in [0, 1)"});
}

TEST(ConfigTest, NegativeSeed) { expect_error({"--seed", "-1"}, {"--seed", "-1"}); }
TEST(ConfigTest, AllreduceByNumber) { expect_error({"--allreduce", "1"}, {"--allreduce", "1"}); }
// CLI::PositiveNumber / NonNegativeNumber report their range as "0.000000 to <309 digits>.000000",
// and the --allreduce error shows the enum's integer values. Enable when the messages are short.
TEST(ConfigTest, ReadableMessages) {
  for (const auto& args : std::vector<std::vector<std::string>>{{"--lr", "-1"}, {"--lr", "0"}, {"--max-steps", "-3"}}) {
    const std::string msg = expect_error(args, {args[0], args[1]});
    EXPECT_LT(msg.size(), 160u) << msg;
  }
  const std::string msg = expect_error({"--allreduce", "foo"}, {"naive", "mpi", "ring", "rhd"});
  EXPECT_EQ(msg.find("->"), std::string::npos) << msg;
}

}  // namespace
}  // namespace cifar
