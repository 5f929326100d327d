#pragma once
// The directive tree: statements from the lexer nested by their blocks, with
// every `include` replaced in place by the directives of the files it names.
// What the directives mean is not known here (see directive.h).

#include <string>
#include <string_view>
#include <vector>

namespace portico::config {

struct Node {                      // one directive
    std::vector<std::string> args; // args[0] = name; quotes removed, escapes processed
    std::vector<bool> quoted;      // per arg: was it quoted (`if` cares, most do not)
    std::string file;
    // The line nginx reports for this directive: where its ';' or '{' was
    // read. 0 for directives given with `-g` (nginx says "in command line").
    unsigned line = 0;
    unsigned first_line = 0; // where args[0] starts
    bool has_block = false;  // "name args { ... }"
    unsigned end_line = 0;   // line of the closing '}' when has_block
    std::vector<Node> children;
};

struct Error {
    std::string file;  // empty: no location (nginx: the main file could not be opened)
    unsigned line = 0; // 0 with a file: "command line" style, no line number
    std::string message;
    std::string where() const; // "file:line", "file" or ""
    // nginx's whole text: `message in file:line`, or just `message`.
    std::string text() const;
};

struct SourceFile { // every file read, in order, once each: for `-T`
    std::string path;
    std::string text;
};

struct Document {
    std::vector<Node> nodes;
    std::vector<SourceFile> files;
};

// nginx has no limit; ours stops `include` cycles with a message instead of
// running out of file descriptors.
inline constexpr unsigned kMaxIncludeDepth = 32;

// Reads `path` and every `include`, expanded in place at any level. Relative
// include paths resolve against conf_dir (nginx: the conf prefix, the
// directory of the main file); patterns with * ? [ are glob(3)ed, sorted, and
// may match nothing.
bool parse_file(const std::string &path, const std::string &conf_dir, Document &doc, Error &err);

// `-g "directives"`, as nginx reads it: no blocks ("block directives are not
// supported in -g option"), errors "in <name>" without a line. Appends to doc.
bool parse_text(std::string_view text, const std::string &name, const std::string &conf_dir,
                Document &doc, Error &err);

// Text with file rules, as if read from a file called `name` (tests, fuzzing,
// configs built in memory). `name` is not added to doc.files.
bool parse_string(std::string_view text, const std::string &name, const std::string &conf_dir,
                  Document &doc, Error &err);

} // namespace portico::config
