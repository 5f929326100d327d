#pragma once
// Typed value parsers with nginx's formats and limits. Each returns nullptr on
// success or a static message in nginx's words; setter_error_text() turns the
// message into the line nginx logs.

#include <cstdint>
#include <string>
#include <string_view>

namespace portico::config {

extern const char *const kInvalidValue;  // "invalid value"
extern const char *const kInvalidNumber; // "invalid number"
extern const char *const kFlagMustBe;    // "it must be \"on\" or \"off\""

// "on" | "off", any case (nginx compares with strcasecmp).
const char *parse_flag(std::string_view v, bool &out);

// Bytes: digits with an optional k/K, m/M or g/G suffix (powers of 1024);
// nothing else, no sign, no space; results above INT64_MAX refused.
const char *parse_size(std::string_view v, int64_t &out);

// nginx time, in milliseconds: units ms s m h d w (y and M are seconds-only in
// nginx's msec parser), largest first, each at most once, optionally
// space-separated: "1h 30m", "1h30m", "500ms". A bare number is seconds.
const char *parse_msec(std::string_view v, int64_t &out);

// The same in seconds; "ms" refused, y (365 d) and M (30 d) allowed.
const char *parse_sec(std::string_view v, int64_t &out);

// A non-negative decimal integer (nginx's ngx_atoi: no sign, no space).
const char *parse_int(std::string_view v, int64_t &out);

// nginx's logged text for a failed setter of `directive` given `value`:
//   invalid value "x" in "gzip" directive, it must be "on" or "off"   (flag)
//   "client_max_body_size" directive invalid value                     (others)
std::string setter_error_text(std::string_view directive, std::string_view value,
                              const char *message);

} // namespace portico::config
