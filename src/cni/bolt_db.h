// A read-only reader of a bbolt database file (the key/value store podman 4 keeps its containers
// in): finds a value by its path of nested bucket names. Reads the file as it is, without the
// writer's lock; the caller reads only while the writer waits (during a CNI call).
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace pilus::cni {

class BoltDb {
 public:
  // Throws pilus::Error when the file cannot be read or is not a bbolt database.
  explicit BoltDb(const std::string& path);

  // The value at buckets[0] / buckets[1] / ... / key; nullopt when a bucket or the key is absent.
  std::optional<std::string> get(const std::vector<std::string>& buckets, const std::string& key) const;

 private:
  struct Bucket {
    uint64_t root = 0;       // page id; 0: inline
    std::string inline_page;  // the page bytes of an inline bucket
  };
  // The value (or sub-bucket header, is_bucket set) at `key` in the bucket.
  std::optional<std::string> find(const Bucket& b, const std::string& key, bool want_bucket) const;
  std::optional<std::string> find_in_page(const char* page, size_t avail, const std::string& key,
                                          bool want_bucket, int depth) const;
  Bucket bucket_of(const std::string& header) const;
  const char* page(uint64_t id, size_t* avail) const;

  std::string path_;
  std::string data_;
  uint32_t page_size_ = 4096;
  Bucket root_;
};

}  // namespace pilus::cni
