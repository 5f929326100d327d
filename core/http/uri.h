// Request-target path handling: the $uri nginx computes, $arg_NAME, the
// extension for MIME types, and escaping for Location headers.
#pragma once

#include <string>
#include <string_view>

namespace portico::http {

enum class UriError { None, BadEncoding, EncodedNul, AboveRoot, Invalid };

const char *to_string(UriError e);

// raw: origin-form path (before '?'), must start with '/'. out receives the
// decoded, dot-segment-free path; it is cleared first and only allocates when
// its capacity is below raw.size() (the result is never longer than raw).
// Every error is a 400 for the caller.
UriError normalize_path(std::string_view raw, bool merge_slashes, std::string &out);

// $arg_NAME: first "NAME=value" among '&'-separated args, NAME compared
// case-insensitively; value stays percent-encoded, as nginx leaves it.
bool find_arg(std::string_view args, std::string_view name, std::string_view &value);

// Extension after the last '.' of the last segment, "" if none; a leading dot
// ("/.htaccess") is not an extension, as in nginx.
std::string_view uri_extension(std::string_view uri);

// Appends in to out, percent-encoding (upper-case hex) what nginx's URI
// escape table does: controls, space, '#', '%', '?', DEL and bytes >= 0x80.
void escape_uri(std::string_view in, std::string &out);

} // namespace portico::http
