#include "service/maglev.h"

#include <algorithm>

#include "common/error.h"

namespace pilus::service {

bool is_prime(uint32_t n) {
  if (n < 2) return false;
  for (uint32_t d = 2; static_cast<uint64_t>(d) * d <= n; d++)
    if (n % d == 0) return false;
  return true;
}

uint64_t maglev_hash(std::string_view s, uint64_t seed) {
  uint64_t h = 0xcbf29ce484222325ULL ^ seed;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  // splitmix64's finaliser: FNV alone leaves the low bits of similar names close.
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ULL;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebULL;
  h ^= h >> 31;
  return h;
}

std::vector<uint32_t> maglev_table(std::vector<MaglevBackend> backends, uint32_t size) {
  if (!is_prime(size)) fail("Maglev table size {} is not a prime number", size);
  if (backends.empty()) return {};
  if (backends.size() > size) fail("{} backends do not fit a Maglev table of {} slots", backends.size(), size);
  std::sort(backends.begin(), backends.end(), [](const auto& a, const auto& b) { return a.name < b.name; });

  const size_t n = backends.size();
  std::vector<uint64_t> offset(n), skip(n), next(n, 0);
  for (size_t i = 0; i < n; i++) {
    offset[i] = maglev_hash(backends[i].name, 0x6d61676c65763031ULL) % size;
    skip[i] = maglev_hash(backends[i].name, 0x6d61676c65763032ULL) % (size - 1) + 1;
  }
  constexpr uint32_t kFree = UINT32_MAX;
  std::vector<uint32_t> owner(size, kFree);
  std::vector<uint32_t> table(size);
  uint32_t filled = 0;
  while (true) {
    for (size_t i = 0; i < n; i++) {
      // skip and size are coprime (size is prime), so the walk visits every slot.
      uint64_t slot = (offset[i] + next[i] * skip[i]) % size;
      while (owner[slot] != kFree) {
        next[i]++;
        slot = (offset[i] + next[i] * skip[i]) % size;
      }
      owner[slot] = static_cast<uint32_t>(i);
      table[slot] = backends[i].id;
      next[i]++;
      if (++filled == size) return table;
    }
  }
}

}  // namespace pilus::service
