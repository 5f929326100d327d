#include "http/server_lookup.h"

#include <algorithm>

namespace portico::http {

namespace {

char ascii_lower(char c) {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c | 0x20) : c;
}

std::string lowered(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(), ascii_lower);
    return out;
}

std::string quoted(std::string_view s) {
    std::string q = "\"";
    q += s;
    q += '"';
    return q;
}

// nginx (ngx_hash_add_key) accepts '*' only as a whole first or last label
// and no empty label inside the key.
bool valid_key(std::string_view key) {
    return key.find('*') == std::string_view::npos && key.find("..") == std::string_view::npos;
}

} // namespace

const char *ServerNames::say(std::string msg) {
    message_ = std::move(msg);
    return message_.c_str();
}

const char *ServerNames::conflict(std::string_view name) {
    return say("conflicting server name " + quoted(name) + ", ignored");
}

const char *ServerNames::add(std::string_view name, void *server) {
    if (!name.empty() && name[0] == '~') {
        std::string_view pattern = name.substr(1);
        if (pattern.empty()) return say("empty regex in server name " + quoted(name));
        bool caseless = std::any_of(pattern.begin(), pattern.end(),
                                    [](char c) { return c >= 'A' && c <= 'Z'; });
        std::string err;
        auto re = Regex::compile(pattern, caseless, err);
        if (!re) return say(std::move(err));
        regexes_.emplace_back(std::move(*re), server);
        return nullptr;
    }

    if ((!name.empty() && name[0] == '*' && (name.size() < 3 || name[1] != '.')) || name == ".")
        return say("server name " + quoted(name) + " is invalid");

    std::string key = lowered(name);
    std::string_view k = key;

    if (k.size() > 1 && k[0] == '.') { // ".example.com": both forms, all or nothing
        std::string_view base = k.substr(1);
        if (!valid_key(base)) return say("invalid server name or wildcard " + quoted(name));
        if (exact_.find(base) != exact_.end() || head_.find(base) != head_.end())
            return conflict(name);
        exact_.emplace(base, server);
        head_.emplace(base, server);
        return nullptr;
    }
    if (k.size() > 2 && k[0] == '*') { // "*.example.com"
        std::string_view base = k.substr(2);
        if (!valid_key(base)) return say("invalid server name or wildcard " + quoted(name));
        return head_.emplace(base, server).second ? nullptr : conflict(name);
    }
    if (k.size() > 2 && k.ends_with(".*")) { // "www.example.*"
        std::string_view base = k.substr(0, k.size() - 2);
        if (!valid_key(base) || base[0] == '.')
            return say("invalid server name or wildcard " + quoted(name));
        return tail_.emplace(base, server).second ? nullptr : conflict(name);
    }
    if (!valid_key(k)) return say("invalid server name or wildcard " + quoted(name));
    return exact_.emplace(k, server).second ? nullptr : conflict(name);
}

const char *ServerNames::finalize() {
    // std::unordered_map is ready as built; nothing can fail here (nginx's
    // server_names_hash_bucket_size errors have no equivalent).
    return nullptr;
}

void *ServerNames::find(std::string_view raw, int *ovector, int *ncaptures,
                        const Regex **which) const {
    if (ncaptures) *ncaptures = 0;
    if (which) *which = nullptr;

    // a worker looks up one host at a time: reuse one buffer per thread
    thread_local std::string host;
    if (raw.empty()) {
        host.clear(); // no Host: only server_name "" answers
    } else if (!normalize_host(raw, host)) {
        return nullptr;
    }
    std::string_view h = host;

    if (auto it = exact_.find(h); it != exact_.end()) return it->second;
    if (h.empty()) return nullptr; // nginx tries no wildcard or regex without a name

    if (!head_.empty()) { // longest suffix first: drop one label at a time
        for (size_t dot = h.find('.'); dot != std::string_view::npos; dot = h.find('.', dot + 1))
            if (auto it = head_.find(h.substr(dot + 1)); it != head_.end()) return it->second;
    }
    if (!tail_.empty()) { // longest prefix first
        for (size_t dot = h.rfind('.'); dot != std::string_view::npos && dot > 0;
             dot = h.rfind('.', dot - 1))
            if (auto it = tail_.find(h.substr(0, dot)); it != tail_.end()) return it->second;
    }

    for (const auto &[re, server] : regexes_) {
        int local[2 * kMaxCapturePairs];
        int n = re.match(h, ovector ? ovector : local, kMaxCapturePairs);
        if (n <= 0) continue; // a failing regex (match limit) does not pick a server
        if (ncaptures) *ncaptures = n;
        if (which) *which = &re;
        return server;
    }
    return nullptr;
}

bool normalize_host(std::string_view in, std::string &out) {
    enum class State { Name, Literal, Rest } state = State::Name;
    size_t dot = std::string_view::npos, len = in.size();

    for (size_t i = 0; i < in.size(); i++) {
        char c = in[i];
        switch (c) {
        case '.':
            if (dot != std::string_view::npos && dot + 1 == i) return false;
            dot = i;
            break;
        case ':':
            if (state == State::Name) {
                len = i;
                state = State::Rest;
            }
            break;
        case '[':
            if (i == 0) state = State::Literal;
            break;
        case ']':
            if (state == State::Literal) {
                len = i + 1;
                state = State::Rest;
            }
            break;
        case '/':
            return false;
        default:
            if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return false;
            break;
        }
    }
    if (len > 0 && dot == len - 1) len--;
    if (len == 0) return false;

    out.assign(in.data(), len);
    std::transform(out.begin(), out.end(), out.begin(), ascii_lower);
    return true;
}

} // namespace portico::http
