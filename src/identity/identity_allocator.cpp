// IdentityAllocator: refcounted label set -> number, persisted so numbers survive agent restarts.
#include "identity/identity_allocator.h"

#include <algorithm>
#include <charconv>

#include "common/error.h"
#include "endpoint/ipv4.h"

namespace pilus::identity {

namespace {

struct ReservedIdentity {
  uint32_t id;
  const char* name;
};

constexpr ReservedIdentity kReserved[] = {
    {IDENTITY_HOST, "host"},
    {IDENTITY_WORLD, "world"},
    {IDENTITY_UNMANAGED, "unmanaged"},
    {IDENTITY_HEALTH, "health"},
    {IDENTITY_INIT, "init"},
    {IDENTITY_REMOTE_NODE, "remote-node"},
    {IDENTITY_KUBE_APISERVER, "kube-apiserver"},
    {IDENTITY_INGRESS, "ingress"},
};

std::optional<uint32_t> parse_id(const std::string& text) {
  uint32_t id = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
  // Only the spelling put() writes, so two keys cannot name the same number.
  if (ec != std::errc() || end != text.data() + text.size() || std::to_string(id) != text)
    return std::nullopt;
  return id;
}

}  // namespace

void to_json(nlohmann::json& j, const IdentityInfo& info) {
  j = nlohmann::json{{"id", info.id},
                     {"labels", info.labels},
                     {"refcount", info.refcount},
                     {"reserved", info.reserved}};
}

IdentityAllocator::IdentityAllocator(store::Store& store, uint32_t last_pod_identity,
                                     uint32_t last_local_identity)
    : store_(store),
      pod_range_{IDENTITY_FIRST_POD, last_pod_identity, IDENTITY_FIRST_POD, "pod"},
      local_range_{IDENTITY_FIRST_LOCAL, last_local_identity, IDENTITY_FIRST_LOCAL, "CIDR"} {
  if (last_pod_identity < IDENTITY_FIRST_POD || last_pod_identity > kLastPodIdentity)
    fail("identity allocator: last pod identity {} is outside {}..{}", last_pod_identity,
         static_cast<uint32_t>(IDENTITY_FIRST_POD), kLastPodIdentity);
  if (last_local_identity < IDENTITY_FIRST_LOCAL || last_local_identity > kLastLocalIdentity)
    fail("identity allocator: last CIDR identity {} is outside {}..{}", last_local_identity,
         static_cast<uint32_t>(IDENTITY_FIRST_LOCAL), kLastLocalIdentity);
  for (const auto& reserved : kReserved) {
    LabelSet labels{{std::string(kSourceReserved), reserved.name, ""}};
    by_labels_.emplace(labels, reserved.id);
    by_id_.emplace(reserved.id, Entry{std::move(labels), 0, true});
  }
  load();
}

void IdentityAllocator::load() {
  bool migrated = false;
  for (auto& [key, document] : store_.list(kCollection)) {
    std::string where = fmt::format("store {}/{}", kCollection, key);
    auto id = parse_id(key);
    if (!id) fail("{}: key is not an identity number", where);
    LabelSet labels;
    try {
      labels = document.at("labels").get<LabelSet>();
    } catch (const nlohmann::json::exception& e) {
      fail("{}: expected {{\"labels\": [...]}}: {}", where, e.what());
    } catch (const Error& e) {
      fail("{}: {}", where, e.what());
    }
    bool cidr = IdentityAllocator::is_local(*id);
    load_entry(*id, std::move(labels), where);
    // Written one file each by earlier agents: moved into the one CIDR document below.
    if (cidr) store_.erase(kCollection, key), migrated = true;
  }
  for (auto& [key, document] : store_.list(kCidrCollection)) {
    std::string where = fmt::format("store {}/{}", kCidrCollection, key);
    if (!document.contains("identities") || !document["identities"].is_object())
      fail("{}: expected {{\"identities\": {{\"<id>\": [labels]}}}}", where);
    for (const auto& [id_text, labels_json] : document["identities"].items()) {
      auto id = parse_id(id_text);
      if (!id) fail("{}: \"{}\" is not an identity number", where, id_text);
      LabelSet labels;
      try {
        labels = labels_json.get<LabelSet>();
      } catch (const std::exception& e) {
        fail("{}: identity {}: {}", where, id_text, e.what());
      }
      load_entry(*id, std::move(labels), where + " identity " + id_text);
    }
  }
  if (migrated) persist_cidr_identities_locked();
}

void IdentityAllocator::load_entry(uint32_t id, LabelSet labels, const std::string& where) {
  Range* range = nullptr;
  try {
    range = &range_for(labels);
  } catch (const Error& e) {
    fail("{}: {}", where, e.what());
  }
  if (id < range->first || id > range->last)
    fail("{}: {} is outside the {} identity range {}..{} its labels belong to", where, id, range->name,
         range->first, range->last);
  auto [existing, inserted] = by_labels_.emplace(labels, id);
  if (!inserted) fail("{}: labels {} already have identity {}", where, labels.to_string(), existing->second);
  by_id_.emplace(id, Entry{std::move(labels), 0, false});
}

void IdentityAllocator::persist_cidr_identities_locked() {
  nlohmann::json identities = nlohmann::json::object();
  for (auto it = by_id_.lower_bound(IDENTITY_FIRST_LOCAL); it != by_id_.end(); ++it)
    identities[std::to_string(it->first)] = it->second.labels;
  store_.put(kCidrCollection, "all", nlohmann::json{{"identities", identities}});
}

IdentityAllocator::Range& IdentityAllocator::range_for(const LabelSet& labels) {
  if (labels.empty()) fail("cannot allocate an identity for an empty label set");
  if (labels.any_from_source(kSourceReserved))
    fail("cannot allocate an identity for {}: reserved labels belong to the fixed reserved identities",
         labels.to_string());
  if (labels.any_from_source(kSourceCidr)) {
    if (!labels.all_from_source(kSourceCidr))
      fail("cannot allocate an identity for {}: cidr labels cannot be mixed with others",
           labels.to_string());
    return local_range_;
  }
  return pod_range_;
}

IdentityAllocator::Range& IdentityAllocator::range_of(uint32_t id) {
  return id >= IDENTITY_FIRST_LOCAL ? local_range_ : pod_range_;
}

uint32_t IdentityAllocator::acquire(const LabelSet& labels) {
  std::lock_guard lock(mutex_);
  return acquire_locked(labels);
}

uint32_t IdentityAllocator::acquire_locked(const LabelSet& labels) {
  if (auto found = by_labels_.find(labels); found != by_labels_.end()) {
    Entry& entry = by_id_.at(found->second);
    if (!entry.reserved) ++entry.refcount;
    return found->second;
  }
  Range& range = range_for(labels);
  uint32_t candidate = range.next_candidate;
  for (auto it = by_id_.lower_bound(candidate);
       it != by_id_.end() && it->first == candidate && candidate <= range.last; ++it)
    ++candidate;
  if (candidate > range.last)
    fail("{} identities are exhausted: all {} numbers from {} to {} are in use", range.name,
         range.last - range.first + 1, range.first, range.last);

  // Persist first: an identity the store does not have would get another number after a restart.
  // CIDR identities are persisted by the batch that allocates them (allocate_cidrs).
  if (&range == &pod_range_) store_.put(kCollection, std::to_string(candidate), nlohmann::json{{"labels", labels}});
  by_id_.emplace(candidate, Entry{labels, 1, false});
  by_labels_.emplace(labels, candidate);
  range.next_candidate = candidate + 1;
  return candidate;
}

LabelSet IdentityAllocator::cidr_labels(const std::string& cidr) const {
  endpoint::Ipv4Prefix prefix;
  try {
    prefix = endpoint::parse_ipv4_prefix(cidr, /*allow_bare_address=*/true);
  } catch (const Error& e) {
    fail("cannot allocate a CIDR identity: {}", e.what());
  }
  return LabelSet{{std::string(kSourceCidr), endpoint::to_string(prefix.masked()), ""}};
}

uint32_t IdentityAllocator::allocate_cidr(const std::string& cidr) { return allocate_cidrs({cidr}).at(0); }

std::vector<uint32_t> IdentityAllocator::allocate_cidrs(const std::vector<std::string>& cidrs) {
  std::vector<LabelSet> labels;
  labels.reserve(cidrs.size());
  for (const auto& c : cidrs) labels.push_back(cidr_labels(c));
  std::lock_guard lock(mutex_);
  std::vector<uint32_t> ids;
  ids.reserve(labels.size());
  try {
    for (const auto& l : labels) ids.push_back(acquire_locked(l));
    persist_cidr_identities_locked();
  } catch (...) {
    for (uint32_t id : ids) release_locked(id);
    throw;
  }
  return ids;
}

void IdentityAllocator::release(uint32_t id) { release_all({id}); }

void IdentityAllocator::release_all(const std::vector<uint32_t>& ids) {
  std::lock_guard lock(mutex_);
  bool cidr = false;
  for (uint32_t id : ids) {
    auto it = by_id_.find(id);
    if (it == by_id_.end()) fail("cannot release identity {}: it is not allocated", id);
    if (it->second.reserved) continue;
    if (it->second.refcount == 0) fail("cannot release identity {}: it has no users", id);
  }
  for (uint32_t id : ids) {
    cidr = cidr || is_local(id);
    release_locked(id);
  }
  if (cidr) persist_cidr_identities_locked();
}

// Memory only (the caller persists CIDR identities); pod identities are erased from the store.
void IdentityAllocator::release_locked(uint32_t id) {
  Entry& entry = by_id_.at(id);
  if (entry.reserved) return;
  if (--entry.refcount == 0) free_locked(id);
}

void IdentityAllocator::free_locked(uint32_t id) {
  auto it = by_id_.find(id);
  by_labels_.erase(it->second.labels);
  by_id_.erase(it);
  Range& range = range_of(id);
  range.next_candidate = std::min(range.next_candidate, id);
  // Memory is already consistent if this throws: a stale stored entry is restored unused after a
  // restart and removed by release_unused(), and a reuse of the number overwrites it.
  if (!is_local(id)) store_.erase(kCollection, std::to_string(id));
}

void IdentityAllocator::release_unused() {
  std::lock_guard lock(mutex_);
  std::vector<uint32_t> unused;
  for (const auto& [id, entry] : by_id_)
    if (!entry.reserved && entry.refcount == 0) unused.push_back(id);
  bool cidr = false;
  for (uint32_t id : unused) {
    cidr = cidr || is_local(id);
    free_locked(id);
  }
  if (cidr) persist_cidr_identities_locked();
}

std::optional<uint32_t> IdentityAllocator::lookup(const LabelSet& labels) const {
  std::lock_guard lock(mutex_);
  auto it = by_labels_.find(labels);
  if (it == by_labels_.end()) return std::nullopt;
  return it->second;
}

const LabelSet* IdentityAllocator::labels_of(uint32_t id) const {
  std::lock_guard lock(mutex_);
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &it->second.labels;
}

std::vector<IdentityInfo> IdentityAllocator::list() const {
  std::lock_guard lock(mutex_);
  std::vector<IdentityInfo> infos;
  infos.reserve(by_id_.size());
  for (const auto& [id, entry] : by_id_)
    infos.push_back(IdentityInfo{id, entry.labels, entry.refcount, entry.reserved});
  return infos;
}

size_t IdentityAllocator::pod_identity_count() const {
  std::lock_guard lock(mutex_);
  return static_cast<size_t>(std::count_if(by_id_.begin(), by_id_.end(), [](const auto& item) {
    return !item.second.reserved && item.first < IDENTITY_FIRST_LOCAL;
  }));
}

}  // namespace pilus::identity
