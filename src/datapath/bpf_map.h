// Typed access to a BPF map through its fd: keys and values are the ABI
// structs from bpf/abi, so there is one declaration of each layout.
#pragma once

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cerrno>
#include <optional>
#include <string>
#include <vector>

#include "common/error.h"

namespace pilus::datapath {

template <typename K, typename V>
class BpfMap {
 public:
  BpfMap(int fd, std::string name) : fd_(fd), name_(std::move(name)) {}

  std::optional<V> lookup(const K& key) const {
    V value{};
    if (bpf_map_lookup_elem(fd_, &key, &value) < 0) return std::nullopt;
    return value;
  }

  void update(const K& key, const V& value, uint64_t flags = BPF_ANY) const {
    if (bpf_map_update_elem(fd_, &key, &value, flags) < 0) {
      int e = errno;
      if (e == E2BIG || e == ENOMEM) fail("BPF map {} is full", name_);
      throw system_error("updating BPF map " + name_, e);
    }
  }

  // Writes many entries with one syscall (BPF_MAP_UPDATE_BATCH): a Maglev row is a thousand
  // slots, and one syscall each made programming 10000 services take seconds.
  void update_batch(const std::vector<K>& keys, const std::vector<V>& values) const {
    if (keys.size() != values.size()) fail("BPF map {}: {} keys for {} values", name_, keys.size(), values.size());
    if (keys.empty()) return;
    auto count = static_cast<uint32_t>(keys.size());
    LIBBPF_OPTS(bpf_map_batch_opts, opts, .elem_flags = BPF_ANY);
    if (bpf_map_update_batch(fd_, keys.data(), values.data(), &count, &opts) < 0) {
      int e = errno;
      if (e == E2BIG || e == ENOMEM) fail("BPF map {} is full", name_);
      throw system_error("updating BPF map " + name_ + " in a batch", e);
    }
  }

  bool erase(const K& key) const { return bpf_map_delete_elem(fd_, &key) == 0; }

  // Visits every entry; entries deleted meanwhile are skipped.
  template <typename F>
  void for_each(F&& visit) const {
    for (const K& key : keys()) {
      if (auto value = lookup(key)) visit(key, *value);
    }
  }

  std::vector<K> keys() const {
    std::vector<K> result;
    K key{}, next{};
    const K* prev = nullptr;
    while (bpf_map_get_next_key(fd_, prev, &next) == 0) {
      result.push_back(next);
      key = next;
      prev = &key;
    }
    return result;
  }

  size_t count() const { return keys().size(); }
  int fd() const { return fd_; }
  const std::string& name() const { return name_; }

 private:
  int fd_;
  std::string name_;
};

// Per-CPU maps: one value per possible CPU, summed by the caller.
template <typename K, typename V>
class PerCpuBpfMap {
 public:
  PerCpuBpfMap(int fd, std::string name) : fd_(fd), name_(std::move(name)), cpus_(libbpf_num_possible_cpus()) {}

  std::vector<V> lookup(const K& key) const {
    std::vector<V> values(static_cast<size_t>(cpus_));
    if (bpf_map_lookup_elem(fd_, &key, values.data()) < 0) return {};
    return values;
  }

  std::vector<K> keys() const { return BpfMap<K, V>(fd_, name_).keys(); }
  bool erase(const K& key) const { return bpf_map_delete_elem(fd_, &key) == 0; }
  int fd() const { return fd_; }

 private:
  int fd_;
  std::string name_;
  int cpus_;
};

}  // namespace pilus::datapath
