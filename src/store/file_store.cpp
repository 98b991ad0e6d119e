// FileStore: durable, atomic JSON documents in a directory (see file_store.h for the layout).
#include "store/file_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <filesystem>
#include <system_error>

#include "common/error.h"

namespace pilus::store {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view kSuffix = ".json";
// Encoded keys never start with '.', so temp files cannot collide with (or be listed as) documents.
constexpr std::string_view kTempPrefix = ".tmp-";
constexpr size_t kMaxFileName = 255;  // NAME_MAX on every Linux file system we care about

bool is_plain_key_char(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_' || c == '.';
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;  // lower case is never produced, so it would not round-trip
}

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  // close() can report a deferred write error, so the write path checks it instead of the destructor.
  int close() {
    int rc = ::close(fd_);
    fd_ = -1;
    return rc;
  }

 private:
  int fd_;
};

// Makes a rename, unlink or mkdir inside dir survive a power loss.
void fsync_dir(const std::string& dir) {
  Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0) throw system_error("store: cannot open directory " + dir, errno);
  if (::fsync(fd.get()) != 0) throw system_error("store: cannot fsync directory " + dir, errno);
}

void write_all(int fd, const std::string& data, const std::string& path) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw system_error("store: cannot write " + path, errno);
    }
    done += static_cast<size_t>(n);
  }
}

// mkdir -p with 0700 for the components it creates; existing directories keep their mode.
void make_dirs(const fs::path& dir) {
  fs::path current;
  for (const auto& part : dir) {
    current /= part;
    if (::mkdir(current.c_str(), 0700) == 0) {
      if (current.has_parent_path()) fsync_dir(current.parent_path().string());
      continue;
    }
    if (errno != EEXIST) throw system_error("store: cannot create directory " + current.string(), errno);
  }
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) throw system_error("store: cannot stat " + dir.string(), errno);
  if (!S_ISDIR(st.st_mode)) fail("store: {} is not a directory", dir.string());
}

std::optional<nlohmann::json> read_document(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ENOENT) return std::nullopt;
    throw system_error("store: cannot open " + path, errno);
  }
  std::string text;
  char buffer[8192];
  for (;;) {
    ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw system_error("store: cannot read " + path, errno);
    }
    if (n == 0) break;
    text.append(buffer, static_cast<size_t>(n));
  }
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    fail("store: {} is corrupt (not valid JSON): {}", path, e.what());
  }
}

// A new temp file in dir holding text, flushed to disk first when sync is set; removed again if
// anything fails. Returns its path.
std::string write_temp_file(const std::string& dir, const std::string& text, bool sync) {
  static std::atomic<uint64_t> temp_counter{0};
  std::string temp = dir + "/" + std::string(kTempPrefix) + std::to_string(::getpid()) + "-" +
                     std::to_string(temp_counter++);
  Fd fd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (fd.get() < 0) throw system_error("store: cannot create " + temp, errno);
  try {
    write_all(fd.get(), text, temp);
    if (sync && ::fsync(fd.get()) != 0) throw system_error("store: cannot fsync " + temp, errno);
    if (fd.close() != 0) throw system_error("store: cannot close " + temp, errno);
  } catch (...) {
    ::unlink(temp.c_str());
    throw;
  }
  return temp;
}

std::string encode(const std::string& key) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string name;
  name.reserve(key.size() + kSuffix.size());
  for (size_t i = 0; i < key.size(); ++i) {
    auto c = static_cast<unsigned char>(key[i]);
    // A leading '.' is encoded so "." and ".." are never names, and dot files are never keys.
    if (is_plain_key_char(c) && !(i == 0 && c == '.')) {
      name += static_cast<char>(c);
    } else {
      name += '%';
      name += kHex[c >> 4];
      name += kHex[c & 0xF];
    }
  }
  name += kSuffix;
  return name;
}

}  // namespace

void check_collection_name(const std::string& collection) {
  if (collection.empty() || collection.size() > 64 || collection.front() == '-')
    fail("store: invalid collection name \"{}\"", collection);
  for (unsigned char c : collection) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
      fail("store: invalid collection name \"{}\" (allowed: a-z 0-9 _ -)", collection);
  }
}

std::string encode_document(const nlohmann::json& value) { return value.dump(2) + "\n"; }

std::string key_file_name(const std::string& key) {
  if (key.empty()) fail("store: empty key");
  std::string name = encode(key);
  if (name.size() > kMaxFileName)
    fail("store: key \"{}\" is too long ({} bytes once encoded, at most {})", key, name.size(),
         kMaxFileName);
  return name;
}

std::optional<std::string> key_of_file_name(const std::string& file_name) {
  if (file_name.size() <= kSuffix.size() || !file_name.ends_with(kSuffix)) return std::nullopt;
  std::string_view encoded(file_name.data(), file_name.size() - kSuffix.size());
  std::string key;
  for (size_t i = 0; i < encoded.size(); ++i) {
    if (encoded[i] != '%') {
      key += encoded[i];
      continue;
    }
    if (i + 2 >= encoded.size()) return std::nullopt;
    int hi = hex_value(encoded[i + 1]), lo = hex_value(encoded[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    key += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  // Only the one canonical spelling maps to a key, so two files can never hold the same key.
  if (key.empty() || encode(key) != file_name) return std::nullopt;
  return key;
}

FileStore::FileStore(std::string dir) : dir_(std::move(dir)) {
  if (dir_.empty()) fail("store: empty directory name");
  make_dirs(dir_);
  remove_temp_files();
}

std::string FileStore::collection_dir(const std::string& collection) const {
  check_collection_name(collection);
  return (fs::path(dir_) / collection).string();
}

void FileStore::ensure_collection_dir(const std::string& collection) {
  std::string path = collection_dir(collection);
  if (::mkdir(path.c_str(), 0700) == 0) {
    fsync_dir(dir_);
  } else if (errno != EEXIST) {
    throw system_error("store: cannot create directory " + path, errno);
  }
}

// A crash between creating a temp file and renaming it leaves the temp file behind; the document
// it was meant to replace is still intact, so the temp file is only garbage.
void FileStore::remove_temp_files() {
  std::error_code ec;
  for (const auto& collection : fs::directory_iterator(dir_, ec)) {
    if (!collection.is_directory(ec)) continue;
    bool removed = false;
    for (const auto& entry : fs::directory_iterator(collection.path(), ec)) {
      if (entry.path().filename().string().starts_with(kTempPrefix)) {
        if (::unlink(entry.path().c_str()) != 0 && errno != ENOENT)
          throw system_error("store: cannot remove leftover " + entry.path().string(), errno);
        removed = true;
      }
    }
    if (removed) fsync_dir(collection.path().string());
  }
  if (ec) fail("store: cannot read directory {}: {}", dir_, ec.message());
}

void FileStore::put(const std::string& collection, const std::string& key,
                    const nlohmann::json& value) {
  std::string name = key_file_name(key);
  std::string text;
  try {
    text = encode_document(value);
  } catch (const nlohmann::json::exception& e) {
    fail("store: cannot encode {}/{}: {}", collection, key, e.what());
  }

  std::lock_guard lock(mutex_);
  ensure_collection_dir(collection);
  std::string cdir = collection_dir(collection);
  std::string target = cdir + "/" + name;
  std::string temp = write_temp_file(cdir, text, /*sync=*/true);
  if (::rename(temp.c_str(), target.c_str()) != 0) {
    int err = errno;
    ::unlink(temp.c_str());
    throw system_error("store: cannot rename " + temp + " to " + target, err);
  }
  fsync_dir(cdir);
}

std::optional<nlohmann::json> FileStore::get(const std::string& collection,
                                             const std::string& key) const {
  std::string name = key_file_name(key);
  std::lock_guard lock(mutex_);
  return read_document(collection_dir(collection) + "/" + name);
}

bool FileStore::erase(const std::string& collection, const std::string& key) {
  std::string name = key_file_name(key);
  std::lock_guard lock(mutex_);
  std::string cdir = collection_dir(collection);
  std::string path = cdir + "/" + name;
  if (::unlink(path.c_str()) != 0) {
    if (errno == ENOENT) return false;
    throw system_error("store: cannot remove " + path, errno);
  }
  fsync_dir(cdir);
  return true;
}

std::vector<std::pair<std::string, nlohmann::json>> FileStore::list(
    const std::string& collection) const {
  std::lock_guard lock(mutex_);
  std::string cdir = collection_dir(collection);
  std::vector<std::pair<std::string, nlohmann::json>> documents;
  std::error_code ec;
  fs::directory_iterator it(cdir, ec);
  if (ec) {
    if (ec == std::errc::no_such_file_or_directory) return documents;
    fail("store: cannot read directory {}: {}", cdir, ec.message());
  }
  for (const auto& entry : it) {
    // Stray files (editor backups, temp files) are not documents of the collection.
    auto key = key_of_file_name(entry.path().filename().string());
    if (!key || !entry.is_regular_file(ec)) continue;
    auto document = read_document(entry.path().string());
    if (document) documents.emplace_back(std::move(*key), std::move(*document));
  }
  std::sort(documents.begin(), documents.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  return documents;
}

void FileStore::commit(WriteBatch& batch) {
  std::vector<WriteBatch::Change> changes = std::move(batch.changes_);
  batch.clear();
  if (changes.empty()) return;
  size_t puts = 0;
  for (const auto& c : changes) puts += c.text.has_value();
  // Up to this many new documents, an fsync each is cheaper than syncing the whole file system
  // (which also flushes whatever else is dirty on it).
  constexpr size_t kFsyncEachUpTo = 4;
  const bool fsync_each = puts <= kFsyncEachUpTo;

  std::lock_guard lock(mutex_);
  std::vector<std::string> temps(changes.size());  // per change: its temp file, or empty
  auto remove_temps = [&temps](size_t from) {
    for (size_t i = from; i < temps.size(); ++i)
      if (!temps[i].empty()) ::unlink(temps[i].c_str());
  };
  try {
    for (size_t i = 0; i < changes.size(); ++i) {
      if (!changes[i].text) continue;
      ensure_collection_dir(changes[i].collection);
      temps[i] = write_temp_file(collection_dir(changes[i].collection), *changes[i].text, fsync_each);
    }
    if (!fsync_each && puts > 0) {
      Fd fd(::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      if (fd.get() < 0) throw system_error("store: cannot open directory " + dir_, errno);
      // Since Linux 5.8 syncfs reports write-back errors of the file system, as fsync does.
      if (::syncfs(fd.get()) != 0) throw system_error("store: cannot sync the file system of " + dir_, errno);
    }
  } catch (...) {
    remove_temps(0);
    throw;
  }

  // From here on documents change: a failure leaves the changes before it made.
  size_t made = 0;
  std::vector<std::string> dirs;  // collection directories changed, each once
  try {
    for (size_t i = 0; i < changes.size(); ++i, ++made) {
      std::string cdir = collection_dir(changes[i].collection);
      std::string path = cdir + "/" + changes[i].file_name;
      if (changes[i].text) {
        if (::rename(temps[i].c_str(), path.c_str()) != 0)
          throw system_error("store: cannot rename " + temps[i] + " to " + path, errno);
        temps[i].clear();
      } else if (::unlink(path.c_str()) != 0) {
        if (errno == ENOENT) continue;
        throw system_error("store: cannot remove " + path, errno);
      }
      if (std::find(dirs.begin(), dirs.end(), cdir) == dirs.end()) dirs.push_back(cdir);
    }
    for (const auto& dir : dirs) fsync_dir(dir);
  } catch (const Error& e) {
    remove_temps(0);
    fail("{} ({} of the batch's {} changes were made)", e.what(), made, changes.size());
  }
}

}  // namespace pilus::store
