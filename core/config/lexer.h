#pragma once
// nginx configuration grammar, token level: one call reads one statement
// (the words up to ';' or '{', a lone '}', or the end of input), with the
// same quoting, escaping, comment and error rules as nginx's
// ngx_conf_read_token(), so the same text is accepted or refused the same way.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace portico::config {

enum class LexResult {
    Statement,  // words terminated by ';'
    BlockStart, // words terminated by '{'
    BlockEnd,   // a lone '}'
    End,        // end of input between statements
    Error,      // error() holds the message, line() the line nginx reports
};

// nginx reads config files through a 4096-byte buffer; a token that does not
// fit is refused ("too long parameter"). Command-line text has no such limit.
inline constexpr std::size_t kMaxTokenBytes = 4096;

class Lexer {
  public:
    // command_line: the `-g` flavour (no token limit, nginx's
    // "unexpected end of parameter" wording at the end of input).
    explicit Lexer(std::string_view text, bool command_line = false)
        : text_(text), command_line_(command_line) {}

    // Reads the next statement into args (quotes removed, escapes processed)
    // and quoted (per word: did it start with a quote).
    LexResult next(std::vector<std::string> &args, std::vector<bool> &quoted);

    // The line nginx would report now: the line of the terminating ';', '{'
    // or '}' after a statement, the offending line after an error.
    unsigned line() const { return line_; }
    // The line where the last statement's first word began.
    unsigned first_line() const { return first_line_; }
    const std::string &error() const { return error_; }

  private:
    LexResult refuse(std::string message);

    std::string_view text_;
    bool command_line_;
    std::size_t pos_ = 0;
    unsigned line_ = 1;
    unsigned first_line_ = 1;
    std::string error_;
};

// Copies a raw token, processing nginx's escapes: \" \' \\ drop the backslash,
// \t \r \n become the control characters, any other backslash stays.
std::string unescape_token(std::string_view raw);

} // namespace portico::config
