// FastCGI name-value pairs (spec §3.4): the encoding, the writer that packs
// CGI meta-variables into PARAMS records, and the decoder.
#pragma once

#include "record.h"

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace portico::fastcgi {

// §3.4: a length is one byte below 128, else four bytes with the high bit set,
// so the largest length is 2^31-1.
inline constexpr std::size_t kMaxNameValueLength = 0x7fffffff;

constexpr std::size_t length_size(std::size_t length) {
    return length < 128 ? 1 : 4;
}
constexpr std::size_t name_value_size(std::string_view name, std::string_view value) {
    return length_size(name.size()) + length_size(value.size()) + name.size() + value.size();
}

// Appends one encoded pair. Returns the reason and appends nothing when a
// length does not fit the encoding; empty view on success.
std::string_view append_name_value(std::string &out, std::string_view name, std::string_view value);

// The sink handed to the CGI-environment builder. Pairs are packed into PARAMS
// records for one request id, appended to `out` as they come: no copy of the
// environment is kept. A pair is never split across records while it fits in
// one, because PHP-FPM decodes each PARAMS record on its own and rejects a pair
// that runs past the record's end. Only a pair larger than a record (a 70 KiB
// cookie) spans records, which the spec allows - the PARAMS stream is a byte
// stream (§3.3, §5.2) - and Go's net/http/fcgi and flup accept.
class ParamsWriter {
  public:
    ParamsWriter(std::string &out, std::uint16_t request_id);

    // Inline for the usual pair (short name and value, room left in the
    // record): it runs ~20 times per request.
    void put(std::string_view name, std::string_view value) {
        std::size_t size = 2 + name.size() + value.size();
        if (name.size() < 128 && value.size() < 128 && used_ + size <= kMaxRecordContent &&
            !finished_ && error_.empty()) {
            char *p = record_ + used_;
            p[0] = static_cast<char>(name.size());
            p[1] = static_cast<char>(value.size());
            copy_short(p + 2, name);
            copy_short(p + 2 + name.size(), value);
            used_ += size;
            ++pairs_;
            if (used_ == kMaxRecordContent) close_record();
            return;
        }
        put_any(name, value);
    }
    // Closes the open record and appends the empty PARAMS record.
    void finish();

    // A refused pair (length over 2^31-1) makes the writer fail; the request
    // must not be sent. The reason is static text.
    bool failed() const { return !error_.empty(); }
    std::string_view error() const { return error_; }
    std::size_t pairs() const { return pairs_; }

  private:
    // A pair's name or value (< 128 bytes) without a memcpy call for the
    // common few bytes: two overlapping word moves cover 4..16 bytes.
    static void copy_short(char *to, std::string_view from) {
        std::size_t n = from.size();
        const char *s = from.data();
        if (n >= 8 && n <= 16) {
            std::uint64_t a, b;
            std::memcpy(&a, s, 8);
            std::memcpy(&b, s + n - 8, 8);
            std::memcpy(to, &a, 8);
            std::memcpy(to + n - 8, &b, 8);
        } else if (n > 16) {
            std::memcpy(to, s, n);
        } else if (n >= 4) {
            std::uint32_t a, b;
            std::memcpy(&a, s, 4);
            std::memcpy(&b, s + n - 4, 4);
            std::memcpy(to, &a, 4);
            std::memcpy(to + n - 4, &b, 4);
        } else {
            for (std::size_t i = 0; i < n; i++) to[i] = s[i];
        }
    }
    void put_any(std::string_view name, std::string_view value);
    void close_record();
    void write_bytes(std::string_view bytes);
    void write_length(std::size_t length);

    std::string &out_;
    std::uint16_t request_id_;
    // The open record's content is gathered here (a per-thread buffer of one
    // record) and appended to out_ with its header in one piece when the
    // record closes: a pair costs two length bytes and two memcpy, not four
    // std::string appends. A record is open while it holds any byte.
    char *record_;
    std::size_t used_ = 0;
    bool finished_ = false;
    std::size_t pairs_ = 0;
    std::string_view error_;
};

struct NameValue {
    std::string_view name;
    std::string_view value;
};

enum class PairStatus { Pair, End, Error };

// Decodes pairs from a complete byte sequence (the concatenated content of a
// stream, or one GET_VALUES_RESULT record).
class NameValueReader {
  public:
    explicit NameValueReader(std::string_view in) : in_(in) {}

    PairStatus next(NameValue &out);
    std::string_view error() const { return error_; }
    std::size_t offset() const { return pos_; }

  private:
    bool read_length(std::size_t &length);

    std::string_view in_;
    std::size_t pos_ = 0;
    std::string_view error_;
};

} // namespace portico::fastcgi
