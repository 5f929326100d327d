#pragma once
// Time cached once per loop turn: logs and Date headers format it once per
// second at most, not once per request.
#include <cstdint>
#include <string_view>

namespace portico::clock {
void update();                   // call at the top of each loop turn (cheap)
int64_t now_ms();                // wall clock, milliseconds
int64_t now_sec();
std::string_view http_date();    // "Sun, 06 Nov 1994 08:49:37 GMT"
std::string_view log_time();     // "2026/11/23 17:07:00" (error_log)
std::string_view local_time();   // "23/Nov/2026:17:07:00 +0000" ($time_local)
std::string_view iso8601();      // "2026-11-23T17:07:00+00:00" ($time_iso8601)
void format_http_date(int64_t sec, char out[30]); // for Last-Modified
bool parse_http_date(std::string_view s, int64_t &sec); // IMF-fixdate (RFC 9110 §5.6.7)
} // namespace portico::clock
