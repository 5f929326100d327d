// Arbitrary bytes through the configuration reader (file and -g flavours) and
// the complex-value compiler: no crash, no leak, no hang, errors always named.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "config/complex_value.h"
#include "config/parser.h"

namespace {

// Every argument goes through the variable compiler too, as directives do.
void compile_args(const std::vector<portico::config::Node> &nodes) {
    for (const auto &n : nodes) {
        for (const auto &a : n.args) {
            portico::config::ComplexValue cv;
            if (portico::config::compile_complex_value(a, cv) == nullptr && !cv.has_vars() &&
                cv.literal() != a) {
                std::abort();
            }
        }
        compile_args(n.children);
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    std::string text(reinterpret_cast<const char *>(data), size);
    // `include` would read whatever the input names (/dev/zero, /proc/...): the
    // reader is fuzzed here, file inclusion has unit tests with a temp dir.
    for (std::size_t at; (at = text.find("include")) != std::string::npos;)
        text[at] = 'I';

    for (bool command_line : {false, true}) {
        portico::config::Document doc;
        portico::config::Error err;
        const bool ok =
            command_line
                ? portico::config::parse_text(text, "command line", "/nonexistent", doc, err)
                : portico::config::parse_string(text, "fuzz.conf", "/nonexistent", doc, err);
        if (!ok && err.message.empty()) std::abort();
        if (ok) compile_args(doc.nodes);
    }
    return 0;
}
