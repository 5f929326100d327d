// libFuzzer target for the CGI-environment builder: an arbitrary request
// context, split regex and param list -> environment, forwarded values.
// Input: one flags byte, then fields separated by 0xff:
//   regex | uri | args | request_uri | headers ("name:value" per '\n') |
//   params ("NAME value" per '\n', "?" suffix = if_not_empty) | index | cidr | peer
// Invariants checked beyond "no crash": a built environment never comes from
// a path holding CR/LF/NUL, never carries a client Proxy header as HTTP_PROXY
// and never names one HTTP_* header variable twice.
#include "cgi/env_builder.h"
#include "cgi/forwarded.h"

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

using namespace portico::cgi;

namespace {

std::vector<std::string_view> split(std::string_view s, char sep) {
    std::vector<std::string_view> out;
    while (true) {
        std::size_t at = s.find(sep);
        out.push_back(s.substr(0, at));
        if (at == std::string_view::npos) break;
        s.remove_prefix(at + 1);
    }
    return out;
}

struct Sink final : EnvSink {
    std::vector<std::pair<std::string, std::string>> env;
    void put(std::string_view name, std::string_view value) override {
        env.emplace_back(name, value);
    }
};

bool lookup(void *, std::string_view name, std::string &out) {
    if (name.size() > 3) return false;
    out += name;
    return true;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    unsigned flags = data[0];
    std::string_view rest(reinterpret_cast<const char *>(data) + 1, size - 1);
    std::vector<std::string_view> f = split(rest, '\xff');
    f.resize(9);

    std::string err;
    std::optional<SplitPathInfo> splitter;
    if (!f[0].empty()) splitter = SplitPathInfo::compile(f[0], err);

    std::vector<HeaderView> headers;
    for (std::string_view line : split(f[4], '\n')) {
        if (line.empty()) continue;
        std::size_t colon = line.find(':');
        headers.push_back(
            {line.substr(0, colon), colon == std::string_view::npos ? "" : line.substr(colon + 1)});
    }
    ParamList params;
    for (std::string_view line : split(f[5], '\n')) {
        std::size_t sp = line.find(' ');
        std::string_view name = line.substr(0, sp);
        std::string_view value = sp == std::string_view::npos ? "" : line.substr(sp + 1);
        bool if_not_empty = !value.empty() && value.back() == '?';
        if (if_not_empty) value.remove_suffix(1);
        (void)params.add(name, value, if_not_empty, err);
    }
    (void)lint_php_value_params(params);

    CgiInput in;
    in.method = "GET";
    in.uri = f[1];
    in.args = f[2];
    in.request_uri = f[3];
    in.fastcgi_index = f[6];
    in.document_root = "/srv";
    in.remote_addr = f[8];
    in.remote_port = "1";
    in.host = "h";
    in.request_port = (flags & 1) ? "8080" : "";
    in.https = flags & 2;
    in.headers = headers;

    EnvConfig conf;
    conf.params = (flags & 4) ? &params : nullptr;
    conf.split = splitter ? &*splitter : nullptr;
    conf.policy =
        HeaderPolicy(HeaderPolicyConfig{bool(flags & 8), bool(flags & 16), bool(flags & 32)});
    conf.pass_request_headers = !(flags & 64);

    Sink sink;
    std::string scratch;
    auto refused = build_env(in, conf, Variables{lookup, nullptr}, sink, scratch);
    if (!refused) {
        if (!path_is_splittable(in.uri)) std::abort();
        auto user_set = [&](const std::string &name) {
            return conf.params != nullptr && conf.params->sets(name);
        };
        for (std::size_t i = 0; i < sink.env.size(); ++i) {
            const std::string &name = sink.env[i].first;
            if (name == "HTTP_PROXY" && !user_set(name)) std::abort();
            if (!name.starts_with("HTTP_") || user_set(name)) continue;
            for (std::size_t j = 0; j < i; ++j)
                if (sink.env[j].first == name) std::abort();
        }
    } else if (!sink.env.empty()) {
        std::abort(); // refusals come before the first put()
    }

    CidrSet trusted;
    (void)trusted.add(f[7], err);
    (void)trusted.contains(f[8]);
    std::string out;
    append_x_forwarded_for(in, trusted, out);
    append_forwarded(in, trusted, ForwardedOptions{bool(flags & 128), f[7]}, out);
    return 0;
}
