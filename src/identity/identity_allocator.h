// Numeric security identities for label sets: reserved ids, pod ids from 256, CIDR ids in the local range.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "abi/identity.h"
#include "identity/labels.h"
#include "store/store.h"

namespace pilus::identity {

struct IdentityInfo {
  uint32_t id = 0;
  LabelSet labels;
  uint32_t refcount = 0;  // always 0 for reserved identities, which are not counted
  bool reserved = false;
};

// {"id", "labels": [...], "refcount", "reserved"}
void to_json(nlohmann::json& j, const IdentityInfo& info);

// Ranges, as Cilium's: which one a label set lands in follows from its labels.
//   1..8                         reserved:<name>, fixed, never allocated or freed
//   256 .. 2^24-1                every other label set (pods)
//   2^24 .. 2^25-1               sets made only of cidr: labels, node-local
// Numbers are persisted so that a restarted agent gives each label set the number it had, and the
// policy maps it rebuilds match the ones still loaded: pod identities one document each in the
// "identities" collection, CIDR identities (which come and go by the thousand with policies) all
// in one document, "cidr-identities/all", written once per batch.
// Thread-safe.
class IdentityAllocator {
 public:
  static constexpr uint32_t kLastPodIdentity = IDENTITY_FIRST_LOCAL - 1;
  static constexpr uint32_t kLastLocalIdentity = IDENTITY_FIRST_LOCAL + 0xFFFFFF;
  static constexpr const char* kCollection = "identities";
  static constexpr const char* kCidrCollection = "cidr-identities";

  // Loads the persisted identities with refcount 0; throws pilus::Error on a stored entry that is
  // malformed, out of range or a duplicate. The range limits exist so tests can reach exhaustion.
  explicit IdentityAllocator(store::Store& store, uint32_t last_pod_identity = kLastPodIdentity,
                             uint32_t last_local_identity = kLastLocalIdentity);

  IdentityAllocator(const IdentityAllocator&) = delete;
  IdentityAllocator& operator=(const IdentityAllocator&) = delete;

  // The identity of labels, allocating the lowest free number of its range if the set is new, and
  // counting one more user. A reserved label set gives its fixed id (uncounted). Throws on an
  // empty set, on reserved: labels that are not exactly a reserved set, on cidr: labels mixed with
  // others, and when the range is exhausted.
  uint32_t acquire(const LabelSet& labels);
  // The identity of {cidr:<prefix>}, acquired like acquire(). The prefix is normalised (host bits
  // cleared; a bare address is a /32) so equal prefixes share one identity.
  uint32_t allocate_cidr(const std::string& cidr);
  // allocate_cidr() for many prefixes with one store write; the ids in the order given. All or
  // nothing: on an error no new identity stays allocated.
  std::vector<uint32_t> allocate_cidrs(const std::vector<std::string>& cidrs);
  // One user fewer; at 0 the number is freed and erased from the store. No-op for reserved ids;
  // throws for an id that is not allocated or has no users.
  void release(uint32_t id);
  // release() for many ids with one store write for the CIDR ones.
  void release_all(const std::vector<uint32_t>& ids);
  // After restart: frees restored identities that nobody acquired again.
  void release_unused();

  std::optional<uint32_t> lookup(const LabelSet& labels) const;
  // Points into the allocator: valid until the identity is freed.
  const LabelSet* labels_of(uint32_t id) const;
  std::vector<IdentityInfo> list() const;  // ascending by id, reserved ones included
  size_t pod_identity_count() const;

  static bool is_reserved(uint32_t id) { return id > 0 && id < IDENTITY_FIRST_POD; }
  static bool is_local(uint32_t id) { return id >= IDENTITY_FIRST_LOCAL; }

 private:
  struct Entry {
    LabelSet labels;
    uint32_t refcount = 0;
    bool reserved = false;
  };
  struct Range {
    uint32_t first;
    uint32_t last;
    // Every number of the range below this one is in use, so allocation scans from here.
    uint32_t next_candidate;
    const char* name;
  };

  Range& range_for(const LabelSet& labels);
  Range& range_of(uint32_t id);
  uint32_t acquire_locked(const LabelSet& labels);
  void free_locked(uint32_t id);
  void release_locked(uint32_t id);
  LabelSet cidr_labels(const std::string& cidr) const;
  // Writes every CIDR identity as the one kCidrCollection document.
  void persist_cidr_identities_locked();
  void load();
  void load_entry(uint32_t id, LabelSet labels, const std::string& where);

  store::Store& store_;
  mutable std::mutex mutex_;
  std::map<uint32_t, Entry> by_id_;
  std::map<LabelSet, uint32_t> by_labels_;
  Range pod_range_;
  Range local_range_;
};

}  // namespace pilus::identity
