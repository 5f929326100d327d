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
#include <cstdlib>
#include <ftw.h>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

#include "config/parser.h"

using portico::config::Document;
using portico::config::Error;
using portico::config::Node;

namespace {

// A tree as `name arg "quoted"@line;` and `name@line{ ... }@end_line`.
void summarize(const std::vector<Node> &nodes, std::string &out) {
    for (const Node &n : nodes) {
        if (!out.empty() && out.back() != '{') out += ' ';
        for (std::size_t i = 0; i < n.args.size(); ++i) {
            if (i) out += ' ';
            std::string a;
            for (char c : n.args[i])
                a += c == '\n' ? std::string("\\n") : std::string(1, c);
            out += n.quoted[i] ? "\"" + a + "\"" : a;
        }
        out += "@" + std::to_string(n.line);
        if (n.first_line != n.line) out += "/" + std::to_string(n.first_line);
        if (n.has_block) {
            out += "{";
            summarize(n.children, out);
            out += "}@" + std::to_string(n.end_line);
        } else {
            out += ";";
        }
    }
}

std::string result(bool ok, const Document &doc, const Error &err) {
    if (!ok) return "ERR " + err.text();
    std::string out;
    summarize(doc.nodes, out);
    return out;
}

std::string parse(const std::string &text, const std::string &dir = "/nonexistent") {
    Document doc;
    Error err;
    const bool ok = portico::config::parse_string(text, "t.conf", dir, doc, err);
    return result(ok, doc, err);
}

struct Row {
    const char *text;
    const char *expected;
};

const Row kRows[] = {
    {"", ""},
    {"# only a comment", ""},
    {"worker_processes 4;", "worker_processes 4@1;"},
    {"a;\nb c;\n\nd;", "a@1; b c@2; d@4;"},
    {"events {\n  worker_connections 512;\n}\n", "events@1{worker_connections 512@2;}@3"},
    {"http {\n server {\n  location / {\n   root /x;\n  }\n }\n}",
     "http@1{server@2{location /@3{root /x@4;}@5}@6}@7"},
    {"server\n{\n}", "server@2/1{}@3"},
    {"e {}", "e@1{}@1"},
    {"a \"q 1\" 'q 2' plain;", "a \"q 1\" \"q 2\" plain@1;"},
    {"log_format x '$a'\n  '$b'\n  \"c\";", "log_format x \"$a\" \"$b\" \"c\"@3/1;"},
    {"return 200 \"line1\nline2\";\nnext;", "return 200 \"line1\\nline2\"@2/1; next@3;"},
    {"set $v \"${host}x\";", "set $v \"${host}x\"@1;"},
    {"a ${x}{b;}", "a ${x}@1{b@1;}@1"},
    {"if ($a = \"b\") { return 403; }", "if ($a = \"b\" )@1{return 403@1;}@1"},
    {"a # c ; }\n;b;", "a@2/1; b@2;"},
    {"a#b;", "a#b@1;"},
    {"x \\\"y\\\";", "x \"y\"@1;"},
    // errors: nginx's words, the file and the line nginx reports
    {"a;\n}", "ERR unexpected \"}\" in t.conf:2"},
    {"a {\n b;\n", "ERR unexpected end of file, expecting \"}\" in t.conf:3"},
    {"a {\n b\n", "ERR unexpected end of file, expecting \";\" or \"}\" in t.conf:3"},
    {"a\n\n{", "ERR unexpected end of file, expecting \"}\" in t.conf:3"},
    {"{ a; }", "ERR unexpected \"{\" in t.conf:1"},
    {"a;\n;", "ERR unexpected \";\" in t.conf:2"},
    {"a {\n b c }\n}", "ERR unexpected \"}\" in t.conf:2"},
    {"a \"b\"c;", "ERR unexpected \"c\" in t.conf:1"},
    {"a \"unbalanced;\nb;\n", "ERR unexpected end of file, expecting \";\" or \"}\" in t.conf:3"},
    {"a 'x\";", "ERR unexpected end of file, expecting \";\" or \"}\" in t.conf:1"},
    {"include;", "ERR invalid number of arguments in \"include\" directive in t.conf:1"},
    {"\ninclude a b;", "ERR invalid number of arguments in \"include\" directive in t.conf:2"},
    {"include a {}", "ERR directive \"include\" is not terminated by \";\" in t.conf:1"},
    {"include /nonexistent/x.conf;",
     "ERR open() \"/nonexistent/x.conf\" failed (2: No such file or directory) in t.conf:1"},
    {"a {\n\n include rel.conf;\n}",
     "ERR open() \"/nonexistent/rel.conf\" failed (2: No such file or directory) in t.conf:3"},
    {"include /nonexistent/*.conf; a;", "a@1;"},
};

void test_rows(void **) {
    int failures = 0;
    for (const Row &row : kRows) {
        const std::string got = parse(row.text);
        if (got != row.expected) {
            std::printf("text [%s]\n  expected %s\n  got      %s\n", row.text, row.expected,
                        got.c_str());
            ++failures;
        }
    }
    assert_int_equal(failures, 0);
}

void test_deep_blocks(void **) {
    std::string text;
    for (int i = 0; i < 200; ++i)
        text += "a{";
    const std::string got = parse(text);
    assert_string_equal(got.c_str(), "ERR blocks nested deeper than 128 levels in t.conf:1");
}

void test_command_line(void **) {
    Document doc;
    Error err;
    assert_true(portico::config::parse_text("daemon off; worker_processes 2;", "command line", "/x",
                                            doc, err));
    std::string out;
    summarize(doc.nodes, out);
    assert_string_equal(out.c_str(), "daemon off@0; worker_processes 2@0;");

    Document d2;
    assert_false(portico::config::parse_text("events { }", "command line", "/x", d2, err));
    assert_string_equal(err.text().c_str(),
                        "block directives are not supported in -g option in command line");
    Document d3;
    assert_false(portico::config::parse_text("daemon off", "command line", "/x", d3, err));
    assert_string_equal(err.text().c_str(),
                        "unexpected end of parameter, expecting \";\" in command line");
}

// --- includes, in a temporary directory -------------------------------------

std::string g_dir;

void write_file(const std::string &rel, const std::string &text) {
    FILE *f = std::fopen((g_dir + "/" + rel).c_str(), "w");
    assert_non_null(f);
    std::fputs(text.c_str(), f);
    std::fclose(f);
}

int remove_entry(const char *path, const struct stat *, int, struct FTW *) {
    return ::remove(path);
}

int make_dir(void **) {
    char tmpl[] = "/tmp/portico-test-parser-XXXXXX";
    if (!mkdtemp(tmpl)) return -1;
    g_dir = tmpl;
    ::mkdir((g_dir + "/conf.d").c_str(), 0700);
    ::mkdir((g_dir + "/empty.d").c_str(), 0700);
    return 0;
}

int remove_dir(void **) {
    return nftw(g_dir.c_str(), remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

std::string parse_main(const std::string &main_text, Document *out = nullptr) {
    write_file("main.conf", main_text);
    Document doc;
    Error err;
    const bool ok = portico::config::parse_file(g_dir + "/main.conf", g_dir, doc, err);
    std::string s = result(ok, doc, err);
    // paths depend on the temporary directory: show them relative
    for (std::size_t at; (at = s.find(g_dir + "/")) != std::string::npos;) {
        s.erase(at, g_dir.size() + 1);
    }
    if (out) *out = std::move(doc);
    return s;
}

void test_include_glob_sorted(void **) {
    write_file("conf.d/b.conf", "b1;\nb2;\n");
    write_file("conf.d/a.conf", "\na1 {\n  x;\n}\n");
    write_file("conf.d/c.txt", "not_included;\n");
    Document doc;
    assert_string_equal(
        parse_main("first;\nhttp {\n  include conf.d/*.conf;\n  last;\n}\n", &doc).c_str(),
        "first@1; http@2{a1@2{x@3;}@4 b1@1; b2@2; last@4;}@5");
    // the files of the included nodes, and every file once for -T
    assert_string_equal(doc.nodes[1].children[0].file.c_str(), (g_dir + "/conf.d/a.conf").c_str());
    assert_string_equal(doc.nodes[1].children[1].file.c_str(), (g_dir + "/conf.d/b.conf").c_str());
    assert_string_equal(doc.nodes[1].children[3].file.c_str(), (g_dir + "/main.conf").c_str());
    assert_int_equal(doc.files.size(), 3);
    assert_string_equal(doc.files[1].path.c_str(), (g_dir + "/conf.d/a.conf").c_str());
    assert_string_equal(doc.files[2].text.c_str(), "b1;\nb2;\n");
}

void test_include_relative_and_absolute(void **) {
    write_file("one.conf", "one;");
    assert_string_equal(parse_main("include one.conf;\ninclude " + g_dir + "/one.conf;\n").c_str(),
                        "one@1; one@1;");
}

void test_include_no_match_is_fine(void **) {
    assert_string_equal(parse_main("include empty.d/*.conf;\nok;\n").c_str(), "ok@2;");
}

void test_include_missing(void **) {
    assert_string_equal(
        parse_main("a;\n\ninclude missing.conf;\n").c_str(),
        "ERR open() \"missing.conf\" failed (2: No such file or directory) in main.conf:3");
}

void test_include_error_in_included_file(void **) {
    write_file("bad.conf", "good;\n\nbad }\n");
    assert_string_equal(parse_main("x {\n include bad.conf;\n}\n").c_str(),
                        "ERR unexpected \"}\" in bad.conf:3");
    // a block cannot close in another file than it opened in
    write_file("closes.conf", "}\n");
    assert_string_equal(parse_main("x {\n include closes.conf;\n").c_str(),
                        "ERR unexpected \"}\" in closes.conf:1");
}

void test_include_recursion(void **) {
    write_file("loop.conf", "\ninclude loop.conf;\n");
    assert_string_equal(parse_main("include loop.conf;").c_str(),
                        "ERR include nesting deeper than 32 levels, \"loop.conf\" "
                        "includes itself? in loop.conf:2");
}

void test_main_missing(void **) {
    Document doc;
    Error err;
    assert_false(
        portico::config::parse_file("/nonexistent/portico.conf", "/nonexistent", doc, err));
    assert_string_equal(
        err.text().c_str(),
        "open() \"/nonexistent/portico.conf\" failed (2: No such file or directory)");
    assert_string_equal(err.where().c_str(), "");
}

void test_error_where(void **) {
    Error e{"f.conf", 7, "m"};
    assert_string_equal(e.where().c_str(), "f.conf:7");
    assert_string_equal(e.text().c_str(), "m in f.conf:7");
}

} // namespace

int main() {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rows),
        cmocka_unit_test(test_deep_blocks),
        cmocka_unit_test(test_command_line),
        cmocka_unit_test(test_error_where),
        cmocka_unit_test(test_main_missing),
        cmocka_unit_test(test_include_glob_sorted),
        cmocka_unit_test(test_include_relative_and_absolute),
        cmocka_unit_test(test_include_no_match_is_fine),
        cmocka_unit_test(test_include_missing),
        cmocka_unit_test(test_include_error_in_included_file),
        cmocka_unit_test(test_include_recursion),
    };
    return cmocka_run_group_tests(tests, make_dir, remove_dir);
}
