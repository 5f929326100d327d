#include "config/parser.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <glob.h>
#include <unistd.h>
#include <utility>

#include "config/lexer.h"

namespace portico::config {

std::string Error::where() const {
    if (file.empty()) return {};
    if (line == 0) return file;
    return file + ":" + std::to_string(line);
}

std::string Error::text() const {
    const std::string at = where();
    return at.empty() ? message : message + " in " + at;
}

namespace {

// Blocks nest by recursion; nginx only nests known block directives, but we
// build the tree before directives are known, so deep nesting is cut here.
constexpr unsigned kMaxBlockDepth = 128;

class FileHandle {
  public:
    explicit FileHandle(int fd) : fd_(fd) {}
    ~FileHandle() {
        if (fd_ >= 0) ::close(fd_);
    }
    FileHandle(const FileHandle &) = delete;
    FileHandle &operator=(const FileHandle &) = delete;
    int get() const { return fd_; }

  private:
    int fd_;
};

class GlobResult {
  public:
    GlobResult() = default;
    ~GlobResult() { globfree(&g_); }
    GlobResult(const GlobResult &) = delete;
    GlobResult &operator=(const GlobResult &) = delete;
    glob_t *get() { return &g_; }

  private:
    glob_t g_{};
};

// nginx appends " (errno: strerror)" to system call failures.
std::string system_error(const char *call, const std::string &path, int e) {
    return std::string(call) + " \"" + path + "\" failed (" + std::to_string(e) + ": " +
           std::strerror(e) + ")";
}

bool read_whole_file(const std::string &path, std::string &out, std::string &message) {
    FileHandle fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) {
        message = system_error("open()", path, errno);
        return false;
    }
    out.clear();
    char buf[16384];
    for (;;) {
        const ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n == 0) return true;
        if (n < 0) {
            if (errno == EINTR) continue;
            message = system_error("read()", path, errno);
            return false;
        }
        out.append(buf, static_cast<std::size_t>(n));
    }
}

// nginx's ngx_get_full_name: absolute stays, relative is prefixed.
std::string full_name(const std::string &conf_dir, const std::string &name) {
    if (!name.empty() && name[0] == '/') return name;
    if (conf_dir.empty()) return name;
    return conf_dir.back() == '/' ? conf_dir + name : conf_dir + "/" + name;
}

class Reader {
  public:
    Reader(const std::string &conf_dir, Document &doc, Error &err)
        : conf_dir_(conf_dir), doc_(doc), err_(err) {}

    // `from` is where the file was named (an include), empty for the main file.
    bool read_file(const std::string &path, const Error &from, unsigned include_depth,
                   unsigned block_depth, std::vector<Node> &out);

    bool read_statements(Lexer &lex, const std::string &file, bool command_line,
                         unsigned include_depth, unsigned block_depth, std::vector<Node> &out,
                         unsigned *end_line);

  private:
    bool include(const Node &directive, unsigned include_depth, unsigned block_depth,
                 std::vector<Node> &out);
    bool refuse(const std::string &file, unsigned line, std::string message) {
        err_.file = file;
        err_.line = line;
        err_.message = std::move(message);
        return false;
    }

    const std::string &conf_dir_;
    Document &doc_;
    Error &err_;
};

bool Reader::read_file(const std::string &path, const Error &from, unsigned include_depth,
                       unsigned block_depth, std::vector<Node> &out) {
    if (include_depth > kMaxIncludeDepth) {
        return refuse(from.file, from.line,
                      "include nesting deeper than " + std::to_string(kMaxIncludeDepth) +
                          " levels, \"" + path + "\" includes itself?");
    }
    std::string text, message;
    if (!read_whole_file(path, text, message)) return refuse(from.file, from.line, message);

    bool seen = false;
    for (const SourceFile &f : doc_.files)
        seen = seen || f.path == path;
    if (!seen) doc_.files.push_back(SourceFile{path, text});

    Lexer lex(text);
    return read_statements(lex, path, false, include_depth, block_depth, out, nullptr);
}

bool Reader::read_statements(Lexer &lex, const std::string &file, bool command_line,
                             unsigned include_depth, unsigned block_depth, std::vector<Node> &out,
                             unsigned *end_line) {
    auto where_line = [&] { return command_line ? 0u : lex.line(); };
    std::vector<std::string> args;
    std::vector<bool> quoted;
    for (;;) {
        const LexResult r = lex.next(args, quoted);
        switch (r) {
        case LexResult::Error:
            return refuse(file, where_line(), lex.error());
        case LexResult::End:
            if (end_line)
                return refuse(file, where_line(), "unexpected end of file, expecting \"}\"");
            return true;
        case LexResult::BlockEnd:
            if (!end_line) return refuse(file, where_line(), "unexpected \"}\"");
            *end_line = where_line();
            return true;
        case LexResult::BlockStart:
            if (command_line) {
                return refuse(file, 0, "block directives are not supported in -g option");
            }
            break;
        case LexResult::Statement:
            break;
        }

        Node node;
        node.file = file;
        node.line = where_line();
        node.first_line = command_line ? 0u : lex.first_line();
        node.args = std::move(args);
        node.quoted = std::move(quoted);
        args.clear();
        quoted.clear();

        if (node.args[0] == "include") {
            if (r == LexResult::BlockStart) {
                return refuse(file, node.line, "directive \"include\" is not terminated by \";\"");
            }
            if (!include(node, include_depth, block_depth, out)) return false;
            continue;
        }
        if (r == LexResult::BlockStart) {
            if (block_depth >= kMaxBlockDepth) {
                return refuse(file, node.line,
                              "blocks nested deeper than " + std::to_string(kMaxBlockDepth) +
                                  " levels");
            }
            node.has_block = true;
            if (!read_statements(lex, file, command_line, include_depth, block_depth + 1,
                                 node.children, &node.end_line)) {
                return false;
            }
        }
        out.push_back(std::move(node));
    }
}

bool Reader::include(const Node &directive, unsigned include_depth, unsigned block_depth,
                     std::vector<Node> &out) {
    const Error from{directive.file, directive.line, {}};
    if (directive.args.size() != 2) {
        return refuse(from.file, from.line, "invalid number of arguments in \"include\" directive");
    }
    const std::string path = full_name(conf_dir_, directive.args[1]);
    if (path.find_first_of("*?[") == std::string::npos) {
        return read_file(path, from, include_depth + 1, block_depth, out);
    }

    // nginx: a pattern that matches nothing is fine (conf.d/*.conf on an empty directory)
    GlobResult matches;
    errno = 0;
    const int rc = ::glob(path.c_str(), 0, nullptr, matches.get());
    if (rc == GLOB_NOMATCH) return true;
    if (rc != 0) {
        const int e = errno;
        std::string message = "glob() \"" + path + "\" failed";
        if (e != 0) message += " (" + std::to_string(e) + ": " + std::strerror(e) + ")";
        return refuse(from.file, from.line, message);
    }
    for (std::size_t i = 0; i < matches.get()->gl_pathc; ++i) {
        if (!read_file(matches.get()->gl_pathv[i], from, include_depth + 1, block_depth, out)) {
            return false;
        }
    }
    return true;
}

} // namespace

bool parse_file(const std::string &path, const std::string &conf_dir, Document &doc, Error &err) {
    Reader reader(conf_dir, doc, err);
    return reader.read_file(path, Error{}, 0, 0, doc.nodes);
}

bool parse_text(std::string_view text, const std::string &name, const std::string &conf_dir,
                Document &doc, Error &err) {
    Reader reader(conf_dir, doc, err);
    Lexer lex(text, true);
    return reader.read_statements(lex, name, true, 0, 0, doc.nodes, nullptr);
}

bool parse_string(std::string_view text, const std::string &name, const std::string &conf_dir,
                  Document &doc, Error &err) {
    Reader reader(conf_dir, doc, err);
    Lexer lex(text);
    return reader.read_statements(lex, name, false, 0, 0, doc.nodes, nullptr);
}

} // namespace portico::config
