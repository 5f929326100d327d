#include "base/regex.h"

#include <cstring>

namespace portico {

namespace {

struct MatchDataFree {
    void operator()(pcre2_match_data *m) const noexcept { pcre2_match_data_free(m); }
};

// One match block per thread, grown to the largest pattern seen: a worker
// matches one regex at a time, so sharing it costs nothing and keeps malloc
// off the per-request path (nginx sizes its captures array once per request).
pcre2_match_data *thread_match_data(uint32_t pairs) {
    thread_local std::unique_ptr<pcre2_match_data, MatchDataFree> data;
    thread_local uint32_t size = 0;
    if (pairs > size || !data) {
        uint32_t want = pairs < 16 ? 16 : pairs;
        data.reset(pcre2_match_data_create(want, nullptr));
        size = data ? want : 0;
    }
    return data.get();
}

} // namespace

std::optional<Regex> Regex::compile(std::string_view pattern, bool caseless, std::string &err) {
    int errcode = 0;
    PCRE2_SIZE erroffset = 0;
    uint32_t options = caseless ? PCRE2_CASELESS : 0;
    pcre2_code *code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                     options, &errcode, &erroffset, nullptr);
    if (code == nullptr) {
        PCRE2_UCHAR buf[256];
        if (pcre2_get_error_message(errcode, buf, sizeof buf) < 0)
            std::strcpy(reinterpret_cast<char *>(buf), "unknown error");
        if (erroffset > pattern.size()) erroffset = pattern.size();
        err = "pcre2_compile() failed: ";
        err += reinterpret_cast<const char *>(buf);
        err += " in \"";
        err += pattern;
        err += "\" at \"";
        err += pattern.substr(erroffset);
        err += '"';
        return std::nullopt;
    }

    Regex re;
    re.code_.reset(code);
    re.pattern_ = pattern;
#ifdef PCRE2_JIT_COMPLETE
    // A JIT failure (no executable memory, ...) is not fatal: the
    // interpreter gives the same answers, only slower.
    pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
#endif

    uint32_t count = 0;
    pcre2_pattern_info(code, PCRE2_INFO_CAPTURECOUNT, &count);
    re.captures_ = static_cast<int>(count);

    uint32_t name_count = 0, entry_size = 0;
    PCRE2_SPTR table = nullptr;
    pcre2_pattern_info(code, PCRE2_INFO_NAMECOUNT, &name_count);
    pcre2_pattern_info(code, PCRE2_INFO_NAMEENTRYSIZE, &entry_size);
    pcre2_pattern_info(code, PCRE2_INFO_NAMETABLE, &table);
    for (uint32_t i = 0; i < name_count; i++) {
        PCRE2_SPTR entry = table + i * entry_size;
        int number = (entry[0] << 8) | entry[1];
        re.names_.emplace_back(reinterpret_cast<const char *>(entry + 2), number);
    }
    return re;
}

int Regex::match(std::string_view subject, int *ovector, int ovector_pairs) const {
    uint32_t pairs = static_cast<uint32_t>(captures_) + 1;
    pcre2_match_data *md = thread_match_data(pairs);
    if (md == nullptr) return PCRE2_ERROR_NOMEMORY;

    int rc = pcre2_match(code_.get(), reinterpret_cast<PCRE2_SPTR>(subject.data()), subject.size(),
                         0, 0, md, nullptr);
    if (rc == PCRE2_ERROR_NOMATCH) return 0;
    if (rc < 0) return rc;
    if (rc == 0) rc = static_cast<int>(pcre2_get_ovector_count(md));

    if (ovector == nullptr || ovector_pairs <= 0) return rc;
    int n = rc < ovector_pairs ? rc : ovector_pairs;
    const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
    for (int i = 0; i < ovector_pairs; i++) {
        bool set = i < n && ov[2 * i] != PCRE2_UNSET;
        ovector[2 * i] = set ? static_cast<int>(ov[2 * i]) : -1;
        ovector[2 * i + 1] = set ? static_cast<int>(ov[2 * i + 1]) : -1;
    }
    return n;
}

} // namespace portico
