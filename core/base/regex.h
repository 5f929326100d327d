// PCRE2 regular expressions, compiled once at config load (JIT when the
// library has it) and matched on the hot path without allocating.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#ifndef PCRE2_CODE_UNIT_WIDTH
#define PCRE2_CODE_UNIT_WIDTH 8
#endif
#include <pcre2.h>

namespace portico {

struct Pcre2CodeFree {
    void operator()(pcre2_code *c) const noexcept { pcre2_code_free(c); }
};

class Regex {
  public:
    // err is set in nginx's words:
    //   pcre2_compile() failed: missing closing parenthesis in "(a" at ""
    static std::optional<Regex> compile(std::string_view pattern, bool caseless, std::string &err);

    // Fills ovector[0 .. 2*ovector_pairs) with (start, end) byte offsets,
    // -1 for groups that did not take part. Returns the number of pairs set
    // (>= 1; when ovector is too small, ovector_pairs), 0 for no match, < 0 for
    // a PCRE2 error (match limit, ...). ovector_pairs == 0 only tests.
    int match(std::string_view subject, int *ovector, int ovector_pairs) const;
    bool matches(std::string_view subject) const { return match(subject, nullptr, 0) > 0; }

    int capture_count() const { return captures_; }
    // named groups as (name, group number), in the pattern's name-table order
    const std::vector<std::pair<std::string, int>> &names() const { return names_; }
    std::string_view pattern() const { return pattern_; }

    Regex(Regex &&) noexcept = default;
    Regex &operator=(Regex &&) noexcept = default;
    Regex(const Regex &) = delete;
    Regex &operator=(const Regex &) = delete;

  private:
    Regex() = default;

    std::unique_ptr<pcre2_code, Pcre2CodeFree> code_;
    int captures_ = 0;
    std::vector<std::pair<std::string, int>> names_;
    std::string pattern_;
};

} // namespace portico
