#include "config/lexer.h"

namespace portico::config {

namespace {

bool is_space(char ch) {
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

std::string unexpected(char ch) {
    return std::string("unexpected \"") + ch + "\"";
}

} // namespace

std::string unescape_token(std::string_view raw) {
    std::string out;
    out.reserve(raw.size());
    std::size_t i = 0;
    while (i < raw.size()) {
        if (raw[i] == '\\' && i + 1 < raw.size()) {
            switch (raw[i + 1]) {
            case '"':
            case '\'':
            case '\\':
                ++i;
                break;
            case 't':
                out += '\t';
                i += 2;
                continue;
            case 'r':
                out += '\r';
                i += 2;
                continue;
            case 'n':
                out += '\n';
                i += 2;
                continue;
            default:
                // nginx keeps the backslash of any other pair: `a\;b` stays as written
                break;
            }
        }
        out += raw[i++];
    }
    return out;
}

LexResult Lexer::refuse(std::string message) {
    error_ = std::move(message);
    return LexResult::Error;
}

// The state flags mirror nginx's reader one for one, so that every odd input
// (`"a"b`, `a"b"`, `${x}{`, `if ($a = "b")`) gets nginx's answer.
LexResult Lexer::next(std::vector<std::string> &args, std::vector<bool> &quoted) {
    args.clear();
    quoted.clear();
    error_.clear();

    bool need_space = false;   // a closing quote was seen: only space ; { ) may follow
    bool last_space = true;    // between words
    bool comment = false;      // inside '#' ... end of line
    bool variable = false;     // just after '$': a '{' here is `${name}`, not a block
    bool escaped = false;      // the previous byte was a backslash
    bool s_quoted = false;     // inside '...'
    bool d_quoted = false;     // inside "..."
    bool token_quoted = false; // the current word opened with a quote
    std::size_t start = pos_;  // first byte of the current word (after an opening quote)
    unsigned start_line = line_;

    for (;;) {
        if (pos_ >= text_.size()) {
            if (!args.empty() || !last_space) {
                if (command_line_) return refuse("unexpected end of parameter, expecting \";\"");
                return refuse("unexpected end of file, expecting \";\" or \"}\"");
            }
            return LexResult::End;
        }
        // nginx meets this when its 4096-byte buffer is all one unfinished
        // word (or comment) and the file has more to read.
        if (!command_line_ && pos_ - start == kMaxTokenBytes) {
            line_ = start_line;
            if (d_quoted || s_quoted) {
                return refuse(std::string("too long parameter, probably missing terminating \"") +
                              (d_quoted ? '"' : '\'') + "\" character");
            }
            return refuse("too long parameter \"" + std::string(text_.substr(start, 10)) +
                          "...\" started");
        }

        const char ch = text_[pos_++];
        if (ch == '\n') {
            ++line_;
            comment = false;
        }
        if (comment) continue;
        if (escaped) {
            escaped = false;
            continue;
        }

        if (need_space) {
            if (is_space(ch)) {
                last_space = true;
                need_space = false;
                continue;
            }
            if (ch == ';') return LexResult::Statement;
            if (ch == '{') return LexResult::BlockStart;
            // `if ($a = "b")`: nginx lets ')' follow a quote and starts a new word with it
            if (ch != ')') return refuse(unexpected(ch));
            last_space = true;
            need_space = false;
        }

        if (last_space) {
            start = pos_ - 1;
            start_line = line_;
            if (is_space(ch)) continue;
            token_quoted = false;
            if (args.empty() && ch != '#') first_line_ = line_;
            switch (ch) {
            case ';':
            case '{':
                if (args.empty()) return refuse(unexpected(ch));
                return ch == '{' ? LexResult::BlockStart : LexResult::Statement;
            case '}':
                if (!args.empty()) return refuse(unexpected(ch));
                return LexResult::BlockEnd;
            case '#':
                comment = true;
                continue;
            case '\\':
                escaped = true;
                last_space = false;
                continue;
            case '"':
            case '\'':
                ++start;
                (ch == '"' ? d_quoted : s_quoted) = true;
                token_quoted = true;
                last_space = false;
                continue;
            case '$':
                variable = true;
                last_space = false;
                continue;
            default:
                last_space = false;
                continue;
            }
        }

        if (ch == '{' && variable) continue;
        variable = false;
        if (ch == '\\') {
            escaped = true;
            continue;
        }
        if (ch == '$') {
            variable = true;
            continue;
        }

        bool found = false;
        if (d_quoted) {
            if (ch == '"') {
                d_quoted = false;
                need_space = found = true;
            }
        } else if (s_quoted) {
            if (ch == '\'') {
                s_quoted = false;
                need_space = found = true;
            }
        } else if (is_space(ch) || ch == ';' || ch == '{') {
            // '#' and '}' inside a word are ordinary bytes, as in nginx: `a#b`, `b}`
            last_space = found = true;
        }
        if (!found) continue;

        args.push_back(unescape_token(text_.substr(start, pos_ - 1 - start)));
        quoted.push_back(token_quoted);
        if (ch == ';') return LexResult::Statement;
        if (ch == '{') return LexResult::BlockStart;
    }
}

} // namespace portico::config
