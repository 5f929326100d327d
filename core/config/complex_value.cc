#include "config/complex_value.h"

namespace portico::config {

bool ComplexValue::has_vars() const {
    for (const Segment &s : segments) {
        if (s.is_var) return true;
    }
    return false;
}

std::string ComplexValue::literal() const {
    std::string out;
    for (const Segment &s : segments) {
        if (!s.is_var) out += s.text;
    }
    return out;
}

namespace {

bool is_name_char(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

// The messages name the offending text, as nginx's do, so they cannot be
// string literals; one buffer per thread keeps the const char * contract.
const char *message(std::string text) {
    thread_local std::string buffer;
    buffer = std::move(text);
    return buffer.c_str();
}

const char *invalid_name(std::string_view text, ComplexValue &out) {
    out.segments.clear();
    return message("invalid variable name \"" + std::string(text) + "\"");
}

} // namespace

const char *compile_complex_value(std::string_view text, ComplexValue &out) {
    out.segments.clear();
    std::size_t i = 0;
    while (i < text.size()) {
        if (text[i] != '$') {
            const std::size_t end = text.find('$', i);
            const std::size_t stop = end == std::string_view::npos ? text.size() : end;
            out.segments.push_back(Segment{false, std::string(text.substr(i, stop - i)), -1});
            i = stop;
            continue;
        }
        if (++i == text.size()) return invalid_name(text, out);
        if (text[i] >= '1' && text[i] <= '9') {
            out.segments.push_back(Segment{true, std::string(1, text[i]), text[i] - '0'});
            ++i;
            continue;
        }
        bool bracket = text[i] == '{';
        if (bracket && ++i == text.size()) return invalid_name(text, out);
        const std::size_t name_start = i;
        std::size_t name_len = 0;
        for (; i < text.size(); ++i, ++name_len) {
            if (bracket && text[i] == '}') {
                ++i;
                bracket = false;
                break;
            }
            if (!is_name_char(text[i])) break;
        }
        const std::string_view name = text.substr(name_start, name_len);
        if (bracket) {
            out.segments.clear();
            return message("the closing bracket in \"" + std::string(name) +
                           "\" variable is missing");
        }
        if (name.empty()) return invalid_name(text, out);
        out.segments.push_back(Segment{true, std::string(name), -1});
    }
    return nullptr;
}

} // namespace portico::config
