// bbolt's file layout (go.etcd.io/bbolt, format version 2), as much as a lookup needs:
//   page:    id u64 | flags u16 | count u16 | overflow u32 | elements ...
//   meta:    (pages 0 and 1) magic u32 | version u32 | page size u32 | flags u32 | root bucket
//            {root page u64, sequence u64} | freelist u64 | high page u64 | txid u64 | checksum
//            u64 (FNV-1a 64 of the fields before it); the valid one with the larger txid is current
//   branch:  {pos u32, key size u32, child page u64}, key at element + pos, sorted
//   leaf:    {flags u32, pos u32, key size u32, value size u32}, key at element + pos, value after
//            the key; flag 1: the value is a bucket {root page u64, sequence u64}, root 0 meaning
//            inline: a page of its own follows the header in the value.
#include "cni/bolt_db.h"

#include <cstring>
#include <fstream>
#include <sstream>

#include "common/error.h"

namespace pilus::cni {

namespace {

constexpr uint32_t kMagic = 0xED0CDAED;
constexpr uint16_t kBranchPage = 0x01, kLeafPage = 0x02;
constexpr uint32_t kBucketLeaf = 0x01;
constexpr size_t kPageHeader = 16, kElement = 16, kBucketHeader = 16;

template <typename T>
T read(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

uint64_t fnv1a64(const char* p, size_t n) {
  uint64_t h = 14695981039346656037ull;
  for (size_t i = 0; i < n; i++) h = (h ^ static_cast<unsigned char>(p[i])) * 1099511628211ull;
  return h;
}

}  // namespace

BoltDb::BoltDb(const std::string& path) : path_(path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot read {}", path);
  std::ostringstream s;
  s << in.rdbuf();
  data_ = s.str();
  auto meta_at = [&](size_t offset) -> const char* {
    if (data_.size() < offset + kPageHeader + 64) return nullptr;
    const char* m = data_.data() + offset + kPageHeader;
    if (read<uint32_t>(m) != kMagic || read<uint32_t>(m + 4) != 2) return nullptr;
    if (read<uint64_t>(m + 56) != fnv1a64(m, 56)) return nullptr;
    return m;
  };
  const char* m0 = meta_at(0);
  if (!m0) fail("{}: not a bbolt database (or its first meta page is damaged)", path);
  page_size_ = read<uint32_t>(m0 + 8);
  if (page_size_ < 512 || page_size_ > (1u << 20)) fail("{}: implausible page size {}", path, page_size_);
  const char* m1 = meta_at(page_size_);
  const char* m = (m1 && read<uint64_t>(m1 + 48) > read<uint64_t>(m0 + 48)) ? m1 : m0;
  root_.root = read<uint64_t>(m + 16);
}

const char* BoltDb::page(uint64_t id, size_t* avail) const {
  uint64_t offset = id * page_size_;
  if (id == 0 || offset + kPageHeader > data_.size()) fail("{}: page {} is outside the file", path_, id);
  *avail = data_.size() - offset;
  return data_.data() + offset;
}

BoltDb::Bucket BoltDb::bucket_of(const std::string& header) const {
  if (header.size() < kBucketHeader) fail("{}: a bucket header is too short", path_);
  Bucket b;
  b.root = read<uint64_t>(header.data());
  if (b.root == 0) b.inline_page = header.substr(kBucketHeader);
  return b;
}

std::optional<std::string> BoltDb::find(const Bucket& b, const std::string& key, bool want_bucket) const {
  if (b.root == 0) return find_in_page(b.inline_page.data(), b.inline_page.size(), key, want_bucket, 0);
  size_t avail = 0;
  const char* p = page(b.root, &avail);
  return find_in_page(p, avail, key, want_bucket, 0);
}

std::optional<std::string> BoltDb::find_in_page(const char* p, size_t avail, const std::string& key,
                                                bool want_bucket, int depth) const {
  if (depth > 64) fail("{}: the page tree is too deep (damaged?)", path_);
  if (avail < kPageHeader) fail("{}: a page is truncated", path_);
  const uint16_t flags = read<uint16_t>(p + 8), count = read<uint16_t>(p + 10);
  if (kPageHeader + size_t(count) * kElement > avail) fail("{}: a page's elements run past the file", path_);
  auto key_at = [&](const char* elem, uint32_t pos, uint32_t size) {
    size_t start = static_cast<size_t>(elem - p) + pos;
    if (start + size > avail) fail("{}: a key runs past its page", path_);
    return std::string_view(p + start, size);
  };
  if (flags & kBranchPage) {
    if (count == 0) return std::nullopt;
    // The last child whose first key is <= key holds it.
    uint64_t child = read<uint64_t>(p + kPageHeader + 8);
    for (uint16_t i = 0; i < count; i++) {
      const char* e = p + kPageHeader + size_t(i) * kElement;
      if (key_at(e, read<uint32_t>(e), read<uint32_t>(e + 4)) > key) break;
      child = read<uint64_t>(e + 8);
    }
    size_t child_avail = 0;
    const char* c = page(child, &child_avail);
    return find_in_page(c, child_avail, key, want_bucket, depth + 1);
  }
  if (!(flags & kLeafPage)) fail("{}: page of unexpected type {:#x} in a bucket", path_, flags);
  for (uint16_t i = 0; i < count; i++) {
    const char* e = p + kPageHeader + size_t(i) * kElement;
    const uint32_t eflags = read<uint32_t>(e), pos = read<uint32_t>(e + 4), ksize = read<uint32_t>(e + 8),
                   vsize = read<uint32_t>(e + 12);
    if (key_at(e, pos, ksize) != key) continue;
    if (bool(eflags & kBucketLeaf) != want_bucket) return std::nullopt;
    std::string_view value = key_at(e, pos + ksize, vsize);
    return std::string(value);
  }
  return std::nullopt;
}

std::optional<std::string> BoltDb::get(const std::vector<std::string>& buckets, const std::string& key) const {
  Bucket b = root_;
  for (const auto& name : buckets) {
    auto header = find(b, name, true);
    if (!header) return std::nullopt;
    b = bucket_of(*header);
  }
  return find(b, key, false);
}

}  // namespace pilus::cni
