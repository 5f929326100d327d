#pragma once
// A directive value with variables ("$host$request_uri"), split once at
// configuration time into literal and variable segments; requests only walk
// the segments (evaluation lives with the variables, core/http/variables).

#include <string>
#include <string_view>
#include <vector>

namespace portico::config {

struct Segment {
    bool is_var = false;
    std::string text; // literal bytes, or the variable name without '$' and braces
    int capture = -1; // $1..$9: 1..9 (is_var, text "1".."9"); otherwise -1
};

struct ComplexValue {
    std::vector<Segment> segments;
    bool has_vars() const;
    std::string literal() const; // the literal segments joined (the whole value when !has_vars())
};

// nginx's script compiler rules (ngx_http_script_compile):
//  - "$name": name is [A-Za-z0-9_]+, the longest run; "${name}" delimits it.
//  - "$1".."$9" are regex captures, one digit only: "$10" is $1 then "0";
//    "$0" is a variable named "0" and "${1}" a variable named "1", as in nginx.
//  - there is no escape for '$': a '$' not starting a name is an error
//    ("invalid variable name"), so is "${" without '}' ("the closing bracket
//    in "x" variable is missing").
// On error returns the message (owned by a thread-local buffer, valid until
// the next call on this thread) and leaves `out` empty.
const char *compile_complex_value(std::string_view text, ComplexValue &out);

} // namespace portico::config
