// libFuzzer: arbitrary bytes → normalize_path (both merge modes) and the
// other uri.h helpers. The invariants are what location matching and the
// file layer rely on.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "http/uri.h"

namespace {

void check(bool ok) {
    if (!ok) std::abort();
}

void check_path(std::string_view raw, bool merge, std::string &out) {
    using portico::http::UriError;
    UriError e = portico::http::normalize_path(raw, merge, out);
    if (e != UriError::None) return;
    std::string_view p = out;
    check(!p.empty() && p[0] == '/');
    check(p.size() <= raw.size());
    check(p.find('\0') == std::string_view::npos);
    check(p.find("/../") == std::string_view::npos);
    check(p.find("/./") == std::string_view::npos);
    check(!p.ends_with("/..") && !p.ends_with("/."));
    if (merge) check(p.find("//") == std::string_view::npos);

    // normalizing is idempotent once '%' cannot be re-decoded
    if (p.find('%') == std::string_view::npos && p.find('#') == std::string_view::npos) {
        std::string again;
        check(portico::http::normalize_path(p, merge, again) == UriError::None);
        check(again == p);
    }

    // escaping leaves nothing a Location header or a re-parse would choke on
    std::string esc;
    portico::http::escape_uri(p, esc);
    for (char c : esc) {
        auto u = static_cast<unsigned char>(c);
        check(u > 0x20 && u < 0x7f && c != '?' && c != '#');
    }
    std::string back;
    check(portico::http::normalize_path(esc, merge, back) == UriError::None);
    check(back == p);

    std::string_view ext = portico::http::uri_extension(p);
    check(ext.find('/') == std::string_view::npos);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    std::string_view in(reinterpret_cast<const char *>(data), size);
    std::string out;
    check_path(in, true, out);
    check_path(in, false, out);

    std::string_view path = in, args;
    if (size_t q = in.find('?'); q != std::string_view::npos) {
        path = in.substr(0, q);
        args = in.substr(q + 1);
    }
    check_path(path, true, out);
    std::string_view v;
    if (portico::http::find_arg(args, "a", v)) check(v.find('&') == std::string_view::npos);
    return 0;
}
