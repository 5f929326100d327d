#pragma once
// nginx's open_file_cache for the static module: open descriptors, their
// stat() and the validators formatted from it (ETag, Last-Modified), kept per
// worker and revalidated with one stat() after `open_file_cache_valid`.
// lighttpd's static lead over nginx's defaults comes from exactly this.
#include <cstdint>
#include <list>
#include <string>
#include <string_view>
#include <sys/stat.h>
#include <unordered_map>

namespace static_module {

// What a request needs of a file: the validators are formatted once per
// (re)open, not once per request.
struct FileInfo {
    int fd = -1;
    struct stat st {};
    char etag[48] = {};          // "<mtime hex>-<size hex>" (nginx's form)
    char last_modified[30] = {}; // IMF-fixdate
    size_t etag_len = 0;
};

// nginx's ETag and Last-Modified from a stat.
void format_validators(FileInfo &f);

class OpenFileCache {
  public:
    OpenFileCache(size_t max, int64_t inactive_sec) : max_(max), inactive_(inactive_sec) {}
    OpenFileCache(const OpenFileCache &) = delete;
    OpenFileCache &operator=(const OpenFileCache &) = delete;
    ~OpenFileCache();

    // The open file at path, opened or revalidated as needed: nullptr with
    // *err = errno when it cannot be opened (errors are not cached). The
    // descriptor stays the cache's: dup() it to hand it on.
    const FileInfo *open(std::string_view path, int64_t now, int64_t valid_sec, int *err);
    size_t size() const { return map_.size(); }

  private:
    struct Entry {
        FileInfo info;
        int64_t valid_until = 0, last_used = 0;
        std::list<const std::string *>::iterator lru; // front: most recent
    };
    struct Hash {
        using is_transparent = void;
        size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
    };
    void evict(std::unordered_map<std::string, Entry, Hash, std::equal_to<>>::iterator it);

    size_t max_;
    int64_t inactive_;
    std::unordered_map<std::string, Entry, Hash, std::equal_to<>> map_;
    std::list<const std::string *> lru_;
};

} // namespace static_module
