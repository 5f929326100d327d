// clang-format off
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
extern "C" {
#include <cmocka.h>
}
// clang-format on

#include <cstdio>
#include <string>

#include "config/lexer.h"

using portico::config::Lexer;
using portico::config::LexResult;

namespace {

// Control bytes shown escaped so the expectations stay one readable line.
std::string visible(const std::string &s) {
    std::string out;
    for (char c : s) {
        if (c == '\n')
            out += "\\n";
        else if (c == '\t')
            out += "\\t";
        else if (c == '\r')
            out += "\\r";
        else
            out += c;
    }
    return out;
}

// Every statement as `word|word<terminator>@line`, separated by spaces;
// quoted words in <>; errors as `ERR(message)@line`.
std::string lex_all(const std::string &text, bool command_line) {
    Lexer lex(text, command_line);
    std::vector<std::string> args;
    std::vector<bool> quoted;
    std::string out;
    for (int guard = 0; guard < 100; ++guard) {
        const LexResult r = lex.next(args, quoted);
        if (!out.empty()) out += ' ';
        if (r == LexResult::End) return out + "END";
        if (r == LexResult::Error) {
            return out + "ERR(" + visible(lex.error()) + ")@" + std::to_string(lex.line());
        }
        for (std::size_t i = 0; i < args.size(); ++i) {
            if (i) out += '|';
            out += quoted[i] ? "<" + visible(args[i]) + ">" : visible(args[i]);
        }
        out += r == LexResult::Statement ? ";" : r == LexResult::BlockStart ? "{" : "}";
        out += "@" + std::to_string(lex.line());
    }
    return out + "LOOP";
}

struct Row {
    const char *text;
    const char *expected;
};

const Row kRows[] = {
    {"", "END"},
    {"   \n\t\r\n", "END"},
    {"a b c;", "a|b|c;@1 END"},
    {"a;b;", "a;@1 b;@1 END"},
    {"a\n b\n ;", "a|b;@3 END"},
    {"events {\n}\n", "events{@1 }@2 END"},
    {"a{b;}", "a{@1 b;@1 }@1 END"},
    {"# comment ; { }\na;", "a;@2 END"},
    {"a b; # trailing ; }\nc;", "a|b;@1 c;@2 END"},
    {"a#b c;", "a#b|c;@1 END"},
    {"a b#;", "a|b#;@1 END"},
    {"a b};", "a|b};@1 END"},
    {"a \"b c\" 'd e';", "a|<b c>|<d e>;@1 END"},
    {"a \"x\\\"y\" 'x\\'y';", "a|<x\"y>|<x'y>;@1 END"},
    {"a \"t\\tr\\rn\\n\\\\\";", "a|<t\\tr\\rn\\n\\>;@1 END"},
    {"a \"\\q\";", "a|<\\q>;@1 END"},
    {"a b\\ c;", "a|b\\ c;@1 END"},
    {"a b\\;c;", "a|b\\;c;@1 END"},
    {"a \\\"b;", "a|\"b;@1 END"},
    {"a \"\";", "a|<>;@1 END"},
    {"a \"x;{}#\" ;", "a|<x;{}#>;@1 END"},
    {"a \"multi\nline\nstring\";\nb;", "a|<multi\\nline\\nstring>;@3 b;@4 END"},
    {"a \"x\"{", "a|<x>{@1 END"},
    {"a \"x\";", "a|<x>;@1 END"},
    {"a a\"b\";", "a|a\"b\";@1 END"},
    {"set $x ${host}{ }", "set|$x|${host}{@1 }@1 END"},
    {"a ${x}y;", "a|${x}y;@1 END"},
    {"a $x{ }", "a|$x{@1 }@1 END"},
    {"if ($a = \"b\") { }", "if|($a|=|<b>|){@1 }@1 END"},
    {"\"quoted name\" v;", "<quoted name>|v;@1 END"},
    // errors, with the line nginx reports
    {"a \"x\"y;", "ERR(unexpected \"y\")@1"},
    {"a 'x'#;", "ERR(unexpected \"#\")@1"},
    {";", "ERR(unexpected \";\")@1"},
    {"a;\n\n ;", "a;@1 ERR(unexpected \";\")@3"},
    {"{", "ERR(unexpected \"{\")@1"},
    {"a b }", "ERR(unexpected \"}\")@1"},
    {"a b", "ERR(unexpected end of file, expecting \";\" or \"}\")@1"},
    {"a b\n", "ERR(unexpected end of file, expecting \";\" or \"}\")@2"},
    {"a \"open\n\n", "ERR(unexpected end of file, expecting \";\" or \"}\")@3"},
    {"a 'x'", "ERR(unexpected end of file, expecting \";\" or \"}\")@1"},
    {"a \\", "ERR(unexpected end of file, expecting \";\" or \"}\")@1"},
};

void test_rows(void **) {
    int failures = 0;
    for (const Row &row : kRows) {
        const std::string got = lex_all(row.text, false);
        if (got != row.expected) {
            std::printf("text [%s]\n  expected %s\n  got      %s\n", visible(row.text).c_str(),
                        row.expected, got.c_str());
            ++failures;
        }
    }
    assert_int_equal(failures, 0);
}

void test_command_line_end(void **) {
    assert_string_equal(lex_all("a b", true).c_str(),
                        "ERR(unexpected end of parameter, expecting \";\")@1");
    assert_string_equal(lex_all("a b;", true).c_str(), "a|b;@1 END");
}

// nginx's buffer is 4096 bytes: a word of 4095 bytes plus its terminator fits, 4096 does not.
void test_too_long(void **) {
    const std::string fits = "a " + std::string(4095, 'x') + ";";
    assert_string_equal(lex_all(fits, false).substr(0, 2).c_str(), "a|");

    const std::string word = "\n\na " + std::string(4096, 'y') + ";";
    assert_string_equal(lex_all(word, false).c_str(),
                        "ERR(too long parameter \"yyyyyyyyyy...\" started)@3");

    const std::string quoted = "a \"" + std::string(5000, 'z') + "\";";
    assert_string_equal(lex_all(quoted, false).c_str(),
                        "ERR(too long parameter, probably missing terminating \"\"\" "
                        "character)@1");

    const std::string squoted = "a '\n" + std::string(5000, 'z') + "';";
    assert_string_equal(lex_all(squoted, false).c_str(),
                        "ERR(too long parameter, probably missing terminating \"'\" "
                        "character)@1");

    // a long word at the very end of input is "unexpected end of file", as in nginx
    const std::string at_end = "a " + std::string(4096, 'w');
    assert_string_equal(lex_all(at_end, false).c_str(),
                        "ERR(unexpected end of file, expecting \";\" or \"}\")@1");

    // -g text has no buffer limit
    const std::string cl = "a " + std::string(10000, 'v') + ";";
    assert_string_equal(lex_all(cl, true).substr(0, 2).c_str(), "a|");
}

void test_unescape(void **) {
    using portico::config::unescape_token;
    assert_string_equal(unescape_token("a\\\"b").c_str(), "a\"b");
    assert_string_equal(unescape_token("\\\\\\'").c_str(), "\\'");
    assert_string_equal(unescape_token("\\x\\").c_str(), "\\x\\");
    assert_string_equal(unescape_token("\\n\\t\\r").c_str(), "\n\t\r");
}

} // namespace

int main() {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rows),
        cmocka_unit_test(test_command_line_end),
        cmocka_unit_test(test_too_long),
        cmocka_unit_test(test_unescape),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
