#include "cifar_mpi/app/run_checks.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <utility>
#include <vector>

#include "cifar_mpi/util/mpi_check.hpp"
#include "cifar_mpi/util/mpi_text.hpp"

namespace cifar {

namespace {

using Items = std::vector<std::pair<std::string, std::string>>;

// The options of the table's kAgreed rows (src/app/config.cpp says which and why).
Items comparable_items(const Config* cfg) {
  if (!cfg) return {{"help", "true"}};
  Items out{{"help", "false"}};
  for (const auto& o : config_options())
    if (o.use & kAgreed) out.emplace_back(o.key, o.value(*cfg));
  return out;
}

// key NUL value NUL ...: values may hold any character but NUL (paths cannot).
std::string serialize(const Items& items) {
  std::string s;
  for (const auto& [k, v] : items) {
    s += k;
    s += '\0';
    s += v;
    s += '\0';
  }
  return s;
}

Items deserialize(const std::string& s) {
  Items out;
  size_t p = 0;
  while (p < s.size()) {
    const size_t k_end = s.find('\0', p);
    if (k_end == std::string::npos) break;
    const size_t v_end = s.find('\0', k_end + 1);
    if (v_end == std::string::npos) break;
    out.emplace_back(s.substr(p, k_end - p), s.substr(k_end + 1, v_end - k_end - 1));
    p = v_end + 1;
  }
  return out;
}

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

std::string show(const std::string& v) { return v.empty() ? "\"\"" : v; }

// "rank R has k = a, rank 0 has k = b" for every key whose values differ.
std::string describe_difference(const Items& mine, const Items& theirs, int other) {
  auto find = [](const Items& items, const std::string& key) -> const std::string* {
    for (const auto& [k, v] : items)
      if (k == key) return &v;
    return nullptr;
  };
  const std::string* my_help = find(mine, "help");
  const std::string* their_help = find(theirs, "help");
  if (!my_help || !their_help || *my_help != *their_help) {
    const bool they_asked = their_help && *their_help == "true";
    return "rank " + std::to_string(other) + (they_asked ? " was" : " was not") + " given --help, rank 0 " +
           (they_asked ? "was not" : "was");
  }
  std::string out;
  for (const auto& [k, v] : theirs) {
    const std::string* m = find(mine, k);
    if (m && *m == v) continue;
    if (!out.empty()) out += "; ";
    out += "rank " + std::to_string(other) + " has " + k + " = " + show(v) + ", rank 0 has " + k + " = " +
           (m ? show(*m) : std::string("(none)"));
  }
  return out.empty() ? "rank " + std::to_string(other) + " differs from rank 0" : out;
}

}  // namespace

void check_config_agreement(const Config* cfg, MPI_Comm comm) {
  int rank = 0, world = 1;
  MPI_CHECK(MPI_Comm_rank(comm, &rank));
  MPI_CHECK(MPI_Comm_size(comm, &world));
  if (world == 1) return;
  const std::string mine = serialize(comparable_items(cfg));
  const uint64_t hash = fnv1a(mine);
  std::vector<uint64_t> hashes(static_cast<size_t>(world));
  MPI_CHECK(MPI_Allgather(&hash, 1, MPI_UINT64_T, hashes.data(), 1, MPI_UINT64_T, comm));
  int first = -1, count = 0;  // the first rank that differs from rank 0, and how many do
  for (int r = 1; r < world; ++r)
    if (hashes[static_cast<size_t>(r)] != hashes[0]) {
      if (first < 0) first = r;
      ++count;
    }
  if (first < 0) return;
  // The first differing rank sends rank 0 its items; rank 0 words the message and shares it.
  constexpr int kTag = 7401;
  std::string message;
  if (rank == first) {
    const int n = checked_mpi_count(mine.size());
    MPI_CHECK(MPI_Send(&n, 1, MPI_INT, 0, kTag, comm));
    MPI_CHECK(MPI_Send(mine.data(), n, MPI_CHAR, 0, kTag, comm));
  } else if (rank == 0) {
    int n = 0;
    MPI_CHECK(MPI_Recv(&n, 1, MPI_INT, first, kTag, comm, MPI_STATUS_IGNORE));
    std::string theirs(static_cast<size_t>(n), '\0');
    MPI_CHECK(MPI_Recv(theirs.data(), n, MPI_CHAR, first, kTag, comm, MPI_STATUS_IGNORE));
    message = "configuration differs between ranks: " +
              describe_difference(deserialize(mine), deserialize(theirs), first);
    if (count > 1) message += " (" + std::to_string(count) + " ranks differ from rank 0)";
  }
  throw CollectiveError(broadcast_text(message, 0, comm));
}

void agree_on_parse_error(const std::string& error, MPI_Comm comm) {
  int rank = 0, world = 1;
  MPI_CHECK(MPI_Comm_rank(comm, &rank));
  MPI_CHECK(MPI_Comm_size(comm, &world));
  int failed = error.empty() ? 0 : 1;
  if (world > 1) MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &failed, 1, MPI_INT, MPI_SUM, comm));
  if (failed == 0) return;
  if (failed == world) {
    // Rank 0's words stand for all: the message of the one that prints must be a real one.
    throw CollectiveError(world > 1 ? broadcast_text(error, 0, comm) : error);
  }
  if (!error.empty()) {
    std::fprintf(stderr, "cifar_mpi: error (rank %d): %s\n", rank, error.c_str());
    std::fflush(stderr);
  }
  throw PartialError("");
}

size_t find_non_finite(std::span<const float> v) {
  // Blocks of 4096: a branch-free OR of "exponent all ones" per block, the exact index only in
  // a block that has one.
  constexpr size_t kBlock = 4096;
  for (size_t b = 0; b < v.size(); b += kBlock) {
    const size_t e = std::min(v.size(), b + kBlock);
    uint32_t bad = 0;
    for (size_t i = b; i < e; ++i) {
      uint32_t u;
      std::memcpy(&u, &v[i], sizeof u);
      bad |= static_cast<uint32_t>((u & 0x7f800000u) == 0x7f800000u);
    }
    if (bad)
      for (size_t i = b; i < e; ++i) {
        uint32_t u;
        std::memcpy(&u, &v[i], sizeof u);
        if ((u & 0x7f800000u) == 0x7f800000u) return i;
      }
  }
  return v.size();
}

const TensorSpec& tensor_at(const ParamArena& arena, size_t offset) {
  for (const auto& s : arena.specs())
    if (offset >= s.offset && offset < s.offset + s.count) return s;
  throw Error("tensor_at: offset " + std::to_string(offset) + " is outside the parameter arena");
}

}  // namespace cifar
