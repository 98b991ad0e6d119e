// Maglev consistent hashing (Eisenbud et al., NSDI 2016): a lookup table of
// prime size M in which every backend owns about M/N slots, and removing one
// backend moves little more than that backend's own slots.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace pilus::service {

struct MaglevBackend {
  std::string name;  // stable across agents and restarts: "ip:port/proto"
  uint32_t id = 0;   // what the table holds
};

bool is_prime(uint32_t n);

// 64-bit FNV-1a with a seed, then a final mix; deterministic everywhere.
uint64_t maglev_hash(std::string_view s, uint64_t seed);

// Each backend walks its own permutation of the slots (offset = h1 % M, skip
// = h2 % (M - 1) + 1) and, in turns, takes its next free slot until the table
// is full. Backends are taken in name order, so the table depends only on the
// set of names. Empty input gives an empty table. Throws when size is not a
// prime or is smaller than the number of backends.
std::vector<uint32_t> maglev_table(std::vector<MaglevBackend> backends, uint32_t size);

}  // namespace pilus::service
