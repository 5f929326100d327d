// SPDX-License-Identifier: BSD-2-Clause
// RFC 9110 §5.6 character classes and ASCII-only case folding. Locale-free on purpose: header
// names and protocol tokens are ASCII, and <cctype> would change meaning with setlocale().
#pragma once

#include <array>
#include <cstddef>
#include <string_view>

namespace portico::ascii {

namespace detail {
// DIGIT / ALPHA and the given punctuation
constexpr std::array<bool, 256> make_alnum_table(std::string_view extra) {
    std::array<bool, 256> t{};
    for (int c = '0'; c <= '9'; ++c) {
        t[c] = true;
    }
    for (int c = 'a'; c <= 'z'; ++c) {
        t[c] = true;
        t[c - 'a' + 'A'] = true;
    }
    for (char c : extra) {
        t[static_cast<unsigned char>(c)] = true;
    }
    return t;
}
// RFC 9110 §5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." /
//                          "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA
inline constexpr std::array<bool, 256> kTchar = make_alnum_table("!#$%&'*+-.^_`|~");
// the usual field name: one table test per byte (underscores are a case of their own)
inline constexpr std::array<bool, 256> kTcharNoUnderscore = make_alnum_table("!#$%&'*+-.^`|~");

// RFC 9110 §5.5: field-vchar / obs-text / SP / HTAB, i.e. anything but a CTL other than HTAB
constexpr std::array<bool, 256> make_field_value_table() {
    std::array<bool, 256> t{};
    for (int c = 0x20; c < 0x100; ++c) {
        t[c] = c != 0x7f;
    }
    t['\t'] = true;
    return t;
}
inline constexpr std::array<bool, 256> kFieldValue = make_field_value_table();

// RFC 3986 §3.2.2 reg-name = *( unreserved / pct-encoded / sub-delims )
inline constexpr std::array<bool, 256> kRegName = make_alnum_table("-._~!$&'()*+,;=%");
} // namespace detail

constexpr unsigned char byte(char c) {
    return static_cast<unsigned char>(c);
}

constexpr bool is_tchar(char c) {
    return detail::kTchar[byte(c)];
}
constexpr bool is_tchar_no_underscore(char c) {
    return detail::kTcharNoUnderscore[byte(c)];
}
constexpr bool is_digit(char c) {
    return c >= '0' && c <= '9';
}
constexpr bool is_alpha(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
constexpr bool is_hexdig(char c) {
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
// value of a hex digit; only meaningful when is_hexdig(c)
constexpr unsigned hex_value(char c) {
    return is_digit(c) ? unsigned(c - '0') : unsigned((c | 0x20) - 'a' + 10);
}
// RFC 5234 VCHAR (%x21-7E) and RFC 9110 §5.5 obs-text (%x80-FF)
constexpr bool is_vchar(char c) {
    return byte(c) >= 0x21 && byte(c) <= 0x7e;
}
constexpr bool is_obs_text(char c) {
    return byte(c) >= 0x80;
}
// RFC 5234 CTL: %x00-1F / %x7F
constexpr bool is_ctl(char c) {
    return byte(c) < 0x20 || byte(c) == 0x7f;
}
// RFC 9110 §5.6.3 OWS/BWS element
constexpr bool is_ows(char c) {
    return c == ' ' || c == '\t';
}
// RFC 9110 §5.5 field-vchar plus the SP / HTAB allowed inside a field value
constexpr bool is_field_value_char(char c) {
    return detail::kFieldValue[byte(c)];
}
constexpr bool is_reg_name_char(char c) {
    return detail::kRegName[byte(c)];
}

constexpr char to_lower(char c) {
    return (c >= 'A' && c <= 'Z') ? char(c + ('a' - 'A')) : c;
}

constexpr bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) {
        return false;
    }
    for (size_t i = 0; i < a.size(); ++i) {
        if (to_lower(a[i]) != to_lower(b[i])) {
            return false;
        }
    }
    return true;
}

constexpr bool istarts_with(std::string_view s, std::string_view prefix) {
    return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

constexpr bool is_token(std::string_view s) {
    if (s.empty()) {
        return false;
    }
    for (char c : s) {
        if (!is_tchar(c)) {
            return false;
        }
    }
    return true;
}

constexpr std::string_view trim_ows(std::string_view s) {
    while (!s.empty() && is_ows(s.front())) {
        s.remove_prefix(1);
    }
    while (!s.empty() && is_ows(s.back())) {
        s.remove_suffix(1);
    }
    return s;
}

} // namespace portico::ascii
