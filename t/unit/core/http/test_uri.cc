// $uri normalization, $arg_NAME, extensions and Location escaping.
#include <csetjmp>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

#include "http/uri.h"

// cmocka last: its fail() macro breaks C++ headers included after it
extern "C" {
#include <cmocka.h>
}

using namespace std::literals;
using portico::http::UriError;

namespace {

struct NormCase {
    std::string_view raw;
    bool merge;
    UriError err;
    std::string_view out; // checked only when err == None
};

constexpr bool M = true, K = false; // merge slashes / keep them

const NormCase norm_cases[] = {
    {"/", M, UriError::None, "/"},
    {"/index.html", M, UriError::None, "/index.html"},
    {"/a/b/c", M, UriError::None, "/a/b/c"},
    // dot segments
    {"/a/./b", M, UriError::None, "/a/b"},
    {"/a/../b", M, UriError::None, "/b"},
    {"/a/b/../../c", M, UriError::None, "/c"},
    {"/./", M, UriError::None, "/"},
    {"/.", M, UriError::None, "/"},
    {"/a/.", M, UriError::None, "/a/"},
    {"/a/..", M, UriError::None, "/"},
    {"/a/b/..", M, UriError::None, "/a/"},
    {"/..", M, UriError::AboveRoot, ""},
    {"/../a", M, UriError::AboveRoot, ""},
    {"/a/../../b", M, UriError::AboveRoot, ""},
    {"/a/../..", M, UriError::AboveRoot, ""},
    {"/..a/...b/.../a..", M, UriError::None, "/..a/...b/.../a.."},
    {"/a/.b/..c", M, UriError::None, "/a/.b/..c"},
    // encoded dots and slashes are decoded before dot segments are resolved
    {"/%2e%2e", M, UriError::AboveRoot, ""},
    {"/a/%2e%2e/b", M, UriError::None, "/b"},
    {"/a/%2E%2e/%2e/b", M, UriError::None, "/b"},
    {"/a/.%2e", M, UriError::None, "/"},
    {"/a%2Fb", M, UriError::None, "/a/b"},
    {"/a%2f..%2f..%2fetc%2fpasswd", M, UriError::AboveRoot, ""},
    {"/a/b%2F..%2Fc", M, UriError::None, "/a/c"},
    {"/a%2F%2Fb", M, UriError::None, "/a/b"},
    {"/a%2F%2Fb", K, UriError::None, "/a//b"},
    // merge_slashes on and off
    {"//a///b//", M, UriError::None, "/a/b/"},
    {"//a///b//", K, UriError::None, "//a///b//"},
    {"/a//../b", M, UriError::None, "/b"},
    {"/a//../b", K, UriError::None, "/a/b"},
    {"//..", K, UriError::None, "/"},
    {"//..", M, UriError::AboveRoot, ""},
    {"/a/.//./b", M, UriError::None, "/a/b"},
    // percent-decoding
    {"/a%20b", M, UriError::None, "/a b"},
    {"/%41%42%43", M, UriError::None, "/ABC"},
    {"/%7e%7E", M, UriError::None, "/~~"},
    {"/%25", M, UriError::None, "/%"},
    {"/%2541", M, UriError::None, "/%41"},
    {"/caf%C3%A9", M, UriError::None, "/caf\xC3\xA9"},
    {"/\xff\x80", M, UriError::None, "/\xff\x80"},
    {"/%0a", M, UriError::None, "/\n"},
    {"/%00", M, UriError::EncodedNul, ""},
    {"/a%00.php", M, UriError::EncodedNul, ""},
    {"/%", M, UriError::BadEncoding, ""},
    {"/%4", M, UriError::BadEncoding, ""},
    {"/%zz", M, UriError::BadEncoding, ""},
    {"/%4g", M, UriError::BadEncoding, ""},
    {"/%%41", M, UriError::BadEncoding, ""},
    // not an origin-form path
    {"", M, UriError::Invalid, ""},
    {"a/b", M, UriError::Invalid, ""},
    {"/a\0b"sv, M, UriError::Invalid, ""},
    {"/a#b", M, UriError::Invalid, ""},
    {"/a%23b", M, UriError::None, "/a#b"},
};

void test_normalize_table(void **) {
    std::string out;
    int failures = 0;
    for (const NormCase &c : norm_cases) {
        UriError e = portico::http::normalize_path(c.raw, c.merge, out);
        bool ok = e == c.err && (e != UriError::None || out == c.out);
        if (!ok) {
            std::printf("FAIL normalize(\"%.*s\", merge=%d): got %s \"%s\", want %s \"%.*s\"\n",
                        int(c.raw.size()), c.raw.data(), c.merge, portico::http::to_string(e),
                        out.c_str(), portico::http::to_string(c.err), int(c.out.size()),
                        c.out.data());
            failures++;
        }
    }
    assert_int_equal(failures, 0);
}

void test_normalize_reuses_buffer(void **) {
    std::string out;
    out.reserve(256);
    const char *before = out.data();
    assert_int_equal(int(portico::http::normalize_path("/a/b/../c", true, out)), 0);
    assert_string_equal(out.c_str(), "/a/c");
    assert_ptr_equal(out.data(), before);
}

struct ArgCase {
    std::string_view args, name;
    bool found;
    std::string_view value;
};

const ArgCase arg_cases[] = {
    {"a=1&b=2", "a", true, "1"},  {"a=1&b=2", "b", true, "2"},   {"a=1&b=2", "c", false, ""},
    {"A=1", "a", true, "1"},      {"a=1", "A", true, "1"},       {"a=1&a=2", "a", true, "1"},
    {"ba=1&a=2", "a", true, "2"}, {"a", "a", false, ""},         {"a&a=3", "a", true, "3"},
    {"a=", "a", true, ""},        {"a=%20x", "a", true, "%20x"}, {"", "a", false, ""},
    {"x=a=1", "a", false, ""},    {"ab=1", "a", false, ""},
};

void test_find_arg_table(void **) {
    int failures = 0;
    for (const ArgCase &c : arg_cases) {
        std::string_view v = "unset";
        bool found = portico::http::find_arg(c.args, c.name, v);
        if (found != c.found || (found && v != c.value)) {
            std::printf("FAIL find_arg(\"%.*s\", \"%.*s\")\n", int(c.args.size()), c.args.data(),
                        int(c.name.size()), c.name.data());
            failures++;
        }
    }
    assert_int_equal(failures, 0);
}

struct ExtCase {
    std::string_view uri, ext;
};

const ExtCase ext_cases[] = {
    {"/index.html", "html"}, {"/a/b.tar.gz", "gz"}, {"/a.b/c", ""},    {"/.htaccess", ""},
    {"/a/.hidden", ""},      {"/file.", ""},        {"/noext", ""},    {"/", ""},
    {"/a.php/x.jpg", "jpg"}, {"/dir/", ""},         {"/x.JPG", "JPG"},
};

void test_extension_table(void **) {
    int failures = 0;
    for (const ExtCase &c : ext_cases) {
        if (portico::http::uri_extension(c.uri) != c.ext) {
            std::printf("FAIL uri_extension(\"%.*s\")\n", int(c.uri.size()), c.uri.data());
            failures++;
        }
    }
    assert_int_equal(failures, 0);
}

struct EscCase {
    std::string_view in, out;
};

const EscCase esc_cases[] = {
    {"/a b", "/a%20b"},
    {"/a?b#c", "/a%3Fb%23c"},
    {"/100%", "/100%25"},
    {"/\r\n", "/%0D%0A"},
    {"/caf\xC3\xA9", "/caf%C3%A9"},
    {"/\x7f", "/%7F"},
    {"/a-b_c.d~e/f&g=h;i+j", "/a-b_c.d~e/f&g=h;i+j"},
};

void test_escape_table(void **) {
    int failures = 0;
    for (const EscCase &c : esc_cases) {
        std::string out = "prefix:";
        portico::http::escape_uri(c.in, out);
        if (out != "prefix:" + std::string(c.out)) {
            std::printf("FAIL escape_uri(\"%.*s\") = \"%s\"\n", int(c.in.size()), c.in.data(),
                        out.c_str());
            failures++;
        }
    }
    assert_int_equal(failures, 0);
}

} // namespace

int main() {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_normalize_table), cmocka_unit_test(test_normalize_reuses_buffer),
        cmocka_unit_test(test_find_arg_table),  cmocka_unit_test(test_extension_table),
        cmocka_unit_test(test_escape_table),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
