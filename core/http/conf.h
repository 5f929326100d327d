#pragma once
// The configuration of one generation (a "cycle" in nginx's words): main
// settings, http{}, servers, locations and the loaded modules. Built by the
// master at start and on every reload; workers inherit it through fork().
//
// Location-level values are std::optional so that merging parent → child is
// "child.value_or(parent)" with no sentinel values (STYLE.md).
#include <portico/module.h>

#include "base/regex.h"
#include "config/complex_value.h"
#include "config/parser.h"
#include "http/location.h"
#include "http/rewrite.h"
#include "http/server_lookup.h"
#include "upstream/upstream.h"

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <sys/socket.h>
#include <unordered_map>
#include <vector>

namespace portico {
using config::ComplexValue;
using config::compile_complex_value;

struct ModuleInfo {
    const pt_module *mod = nullptr;
    void *dl = nullptr; // dlopen handle (closed when the process exits)
    std::string path;
    size_t index = 0; // slot in module_conf vectors
};

struct Listen {
    sockaddr_storage addr{};
    socklen_t addrlen = 0;
    std::string text; // "127.0.0.1:8080", "[::1]:80", "unix:/path"
    bool default_server = false, reuseport = false, ssl = false;
    bool deferred = false; // TCP_DEFER_ACCEPT, as nginx's `deferred`
    int backlog = 511;
    int fd = -1; // opened by the master
};

struct LogFormat {
    std::string name;
    ComplexValue value;
    bool escape_json = false;
    bool escape_none = false;
};

struct AccessLog {
    std::string path;
    const LogFormat *format = nullptr;
    int fd = -1; // opened by the master, inherited by workers
    ~AccessLog();
};

struct ErrorPage {
    int code;
    int overwrite = 0; // "=404": answer with this status; "=": the redirect's status (-1)
    ComplexValue uri;
};

struct AddHeader {
    std::string name;
    ComplexValue value;
    bool always = false;
};

struct AccessRule {
    bool allow;
    bool all;
    sockaddr_storage net{};
    int family = 0;
    int prefix = 0;
};

struct MimeTypes {
    std::unordered_map<std::string, std::string> by_ext;
};

struct ServerConf;
struct CgiConf;
struct TlsConf;

struct LocationConf {
    // identity
    std::string name;
    http::LocKind kind = http::LocKind::Prefix;
    LocationConf *parent = nullptr;
    ServerConf *server = nullptr;
    std::vector<std::unique_ptr<LocationConf>> children;
    const char *file = "";
    unsigned line = 0;

    // content
    std::optional<ComplexValue> root;
    bool root_is_alias = false;
    // a root without variables, made absolute once (phases.cc compute_filename);
    // the config is fixed for a worker's life
    mutable std::string root_abs;
    mutable int8_t root_const = -1; // -1 not yet known, 0 has variables or empty, 1 root_abs holds it
    std::optional<std::vector<ComplexValue>> index;
    std::vector<ComplexValue> try_files; // not inherited (nginx)
    int return_code = 0;                 // 0: no return
    std::optional<ComplexValue> return_text;
    bool internal = false;
    pt_handler_fn handler = nullptr;
    RewriteProgram rewrite; // set / rewrite / if / break, in order (not inherited)
    const ModuleInfo *handler_module = nullptr;

    // inherited settings
    std::optional<std::vector<ErrorPage>> error_pages;
    std::optional<std::string> default_type;
    std::optional<std::shared_ptr<MimeTypes>> types;
    std::optional<std::vector<AddHeader>> add_headers;
    std::optional<int64_t> expires; // seconds; INT64_MIN = off
    std::optional<int64_t> client_max_body_size, client_body_timeout, send_timeout,
        keepalive_timeout, keepalive_requests, client_body_buffer_size;
    std::optional<bool> server_tokens, absolute_redirect, port_in_redirect,
        server_name_in_redirect, sendfile, tcp_nodelay, log_not_found, recursive_error_pages;
    std::optional<std::vector<AccessRule>> access_rules;
    std::optional<std::vector<AccessLog *>> access_logs; // empty vector = off

    std::vector<void *> module_conf;
    const CgiConf *cgi = nullptr; // set by a gateway module's CGI settings
};

struct ServerConf {
    std::vector<Listen> listens;
    std::vector<std::string> names;
    std::unique_ptr<LocationConf> loc; // server-level location defaults
    http::LocationTree locations;
    const char *file = "";
    unsigned line = 0;
    // server-level settings (inherited from http)
    std::optional<int64_t> client_header_timeout, client_header_buffer_size,
        large_client_header_buffers_size, large_client_header_buffers_num;
    std::optional<bool> underscores_in_headers, ignore_invalid_headers, merge_slashes;
    int return_code = 0; // server-level `return` (server rewrite phase)
    RewriteProgram rewrite; // server-level rewrite-module directives
    std::shared_ptr<TlsConf> tls; // ssl_* settings and the SSL_CTX (event/tls.cc)
    std::optional<ComplexValue> return_text;
};

// One listening address and the servers on it.
struct ListenGroup {
    Listen listen;
    ServerConf *default_server = nullptr;
    http::ServerNames names;
};

struct HttpConf {
    std::unique_ptr<LocationConf> loc; // http-level defaults
    ServerConf defaults;               // http-level server settings
    std::vector<std::unique_ptr<ServerConf>> servers;
    std::vector<std::unique_ptr<ListenGroup>> groups;
    std::map<std::string, std::unique_ptr<LogFormat>> log_formats;
    std::vector<std::unique_ptr<AccessLog>> access_logs;
    std::vector<void *> main_conf; // per module
    std::vector<std::unique_ptr<Upstream>> upstreams;
};

struct Cycle {
    std::string prefix, conf_file, conf_dir;
    config::Document doc;

    int worker_processes = 1;
    int worker_connections = 512;
    bool multi_accept = false; // events { multi_accept }: accept until EAGAIN per readiness report
    bool daemon = true, master_process = true;
    std::string pid_path = "logs/portico.pid";
    std::string error_log = "logs/error.log";
    int error_level = 3; // error
    std::string user;
    std::vector<std::string> disabled_modules;

    std::vector<std::unique_ptr<ModuleInfo>> modules;
    std::unique_ptr<HttpConf> http;
    std::vector<std::unique_ptr<char[]>> allocations; // conf_alloc
    std::vector<std::unique_ptr<ComplexValue>> values;   // conf_value
    std::vector<std::shared_ptr<void>> owned;            // other objects modules create

    // phase handlers registered by modules in postconfig
    struct Phase {
        pt_phase_fn fn;
        const ModuleInfo *mod;
    };
    std::vector<Phase> phases[5];
    struct BodyFilter {
        pt_body_filter_fn fn;
        const ModuleInfo *mod;
    };
    std::vector<BodyFilter> body_filters;
    std::vector<std::string> warnings;
};

std::string resolve_path(const Cycle &c, const std::string &p); // relative → prefix/p

} // namespace portico
