// Table tests for the CGI-environment builder: request + config -> exact
// variables. The param list is read from the shipped conf/fastcgi.conf, so
// the file and the builder are tested together against nginx's values.
#include "cgi/env_builder.h"

#include <cctype>
#include <cstdio>
#include <deque>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

// CMocka last: its fail() macro would break <ios>.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
extern "C" { // this cmocka.h has no C++ guard
#include <cmocka.h>
}

using namespace portico::cgi;

namespace {

struct Row {
    const char *name;
    const char *request; // "METHOD target" (raw); the decoded $uri is given by `uri`
    const char *uri;     // decoded, normalized $uri; nullptr = path of the target
    const char *headers; // "Name: value\n" lines, arrival order
    const char *config;  // directives of the tiny test language, see apply_config
    const char *expect;  // "NAME=value" exact, "!NAME" absent, "#N" count of variables
    int status;          // 0 = built, else the refusal's status
};

// Directives (one per line): split <re> | index <name> | underscores | no_auth |
// proxy_auth | no_headers | no_stock | param NAME VALUE [if_not_empty] |
// https | remote ADDR PORT | server_port P | length N | presplit URI | host H PORT
// (VALUE "-" means the empty string)
const Row rows[] = {
    // --- stock fastcgi.conf, ordinary requests: byte-exact nginx values ---
    {"plain GET, whole env in order", "GET /index.php?a=1&b=2", nullptr,
     "Host: example.com\nUser-Agent: curl/8.5.0\nAccept: */*\n", "",
     "#22\nSCRIPT_FILENAME=/var/www/html/index.php\nQUERY_STRING=a=1&b=2\nREQUEST_METHOD=GET\n"
     "CONTENT_TYPE=\nCONTENT_LENGTH=\nSCRIPT_NAME=/index.php\nREQUEST_URI=/index.php?a=1&b=2\n"
     "DOCUMENT_URI=/index.php\nDOCUMENT_ROOT=/var/www/html\nSERVER_PROTOCOL=HTTP/1.1\n"
     "REQUEST_SCHEME=http\n!HTTPS\nGATEWAY_INTERFACE=CGI/1.1\nSERVER_SOFTWARE=portico/0.9.0\n"
     "REMOTE_ADDR=192.0.2.10\nREMOTE_PORT=54321\nSERVER_ADDR=127.0.0.1\nSERVER_PORT=80\n"
     "SERVER_NAME=example.com\nREDIRECT_STATUS=200\nHTTP_HOST=example.com\n"
     "HTTP_USER_AGENT=curl/8.5.0\nHTTP_ACCEPT=*/*",
     0},
    {"GET without query", "GET /index.php", nullptr, "Host: example.com\n", "",
     "QUERY_STRING=\nREQUEST_URI=/index.php\nSCRIPT_NAME=/index.php", 0},
    {"GET with empty query", "GET /index.php?", nullptr, "Host: example.com\n", "",
     "QUERY_STRING=\nREQUEST_URI=/index.php?\nDOCUMENT_URI=/index.php", 0},
    {"query kept encoded", "GET /s.php?q=a%20b&x=%0a", nullptr, "Host: example.com\n", "",
     "QUERY_STRING=q=a%20b&x=%0a\nREQUEST_URI=/s.php?q=a%20b&x=%0a", 0},
    {"percent-encoded path decoded in SCRIPT_NAME", "GET /caf%C3%A9.php", "/caf\xC3\xA9.php",
     "Host: example.com\n", "",
     "SCRIPT_NAME=/caf\xC3\xA9.php\nREQUEST_URI=/caf%C3%A9.php\n"
     "SCRIPT_FILENAME=/var/www/html/caf\xC3\xA9.php",
     0},
    {"HEAD", "HEAD /index.php", nullptr, "Host: example.com\n", "",
     "REQUEST_METHOD=HEAD\nCONTENT_LENGTH=", 0},
    {"OPTIONS", "OPTIONS /api.php", nullptr, "Host: example.com\n", "", "REQUEST_METHOD=OPTIONS",
     0},
    {"POST with length", "POST /form.php", nullptr,
     "Host: example.com\nContent-Type: application/x-www-form-urlencoded\nContent-Length: 7\n", "",
     "REQUEST_METHOD=POST\nCONTENT_TYPE=application/x-www-form-urlencoded\nCONTENT_LENGTH=7\n"
     "!HTTP_CONTENT_TYPE\n!HTTP_CONTENT_LENGTH",
     0},
    {"POST chunked, length unknown", "POST /up.php", nullptr,
     "Host: example.com\nTransfer-Encoding: chunked\nContent-Type: text/plain\n", "",
     "CONTENT_LENGTH=\nCONTENT_TYPE=text/plain\n!HTTP_TRANSFER_ENCODING", 0},
    {"POST chunked, length known after read", "POST /up.php", nullptr,
     "Host: example.com\nTransfer-Encoding: chunked\n", "length 1234",
     "CONTENT_LENGTH=1234\n!HTTP_TRANSFER_ENCODING", 0},
    {"HTTPS on", "GET /index.php", nullptr, "Host: example.com\n", "https",
     "HTTPS=on\nREQUEST_SCHEME=https", 0},
    {"HTTPS off is absent (if_not_empty)", "GET /index.php", nullptr, "Host: example.com\n", "",
     "!HTTPS\nREQUEST_SCHEME=http", 0},
    {"server port 8443", "GET /index.php", nullptr, "Host: example.com:8443\n",
     "server_port 8443\nhost example.com 8443", "SERVER_PORT=8443\nHTTP_HOST=example.com:8443", 0},
    {"IPv6 peer", "GET /index.php", nullptr, "Host: example.com\n", "remote 2001:db8::17 4711",
     "REMOTE_ADDR=2001:db8::17\nREMOTE_PORT=4711", 0},
    {"IPv6 loopback peer", "GET /index.php", nullptr, "Host: example.com\n", "remote ::1 1",
     "REMOTE_ADDR=::1\nREMOTE_PORT=1", 0},
    {"SERVER_NAME is configured, not Host", "GET /index.php", nullptr, "Host: other.test\n",
     "host other.test -", "SERVER_NAME=example.com\nHTTP_HOST=other.test", 0},

    // --- trailing slash, fastcgi_index ---
    {"trailing slash gets fastcgi_index", "GET /", nullptr, "Host: example.com\n",
     "index index.php",
     "SCRIPT_NAME=/index.php\nSCRIPT_FILENAME=/var/www/html/index.php\nDOCUMENT_URI=/", 0},
    {"subdir slash gets index", "GET /blog/?p=1", nullptr, "Host: example.com\n", "index index.php",
     "SCRIPT_NAME=/blog/index.php\nQUERY_STRING=p=1\nDOCUMENT_URI=/blog/", 0},
    {"no index configured keeps slash", "GET /blog/", nullptr, "Host: example.com\n", "",
     "SCRIPT_NAME=/blog/\nSCRIPT_FILENAME=/var/www/html/blog/", 0},
    {"index not appended without slash", "GET /blog", nullptr, "Host: example.com\n",
     "index index.php", "SCRIPT_NAME=/blog", 0},

    // --- fastcgi_split_path_info ---
    {"split: path info", "GET /index.php/foo/bar", nullptr, "Host: example.com\n",
     "split ^(.+\\.php)(/.+)$\nparam PATH_INFO $fastcgi_path_info",
     "SCRIPT_NAME=/index.php\nPATH_INFO=/foo/bar\nSCRIPT_FILENAME=/var/www/html/index.php\n"
     "DOCUMENT_URI=/index.php/foo/bar",
     0},
    {"split: no match keeps uri", "GET /index.php", nullptr, "Host: example.com\n",
     "split ^(.+\\.php)(/.+)$\nparam PATH_INFO $fastcgi_path_info",
     "SCRIPT_NAME=/index.php\nPATH_INFO=", 0},
    {"split: Debian lazy regex", "GET /a.php/b.php/c", nullptr, "Host: example.com\n",
     "split ^(.+?\\.php)(/.*)$\nparam PATH_INFO $fastcgi_path_info",
     "SCRIPT_NAME=/a.php\nPATH_INFO=/b.php/c", 0},
    {"split: greedy regex", "GET /a.php/b.php/c", nullptr, "Host: example.com\n",
     "split ^(.+\\.php)(/.*)$\nparam PATH_INFO $fastcgi_path_info",
     "SCRIPT_NAME=/a.php/b.php\nPATH_INFO=/c", 0},
    {"split: optional group unset", "GET /x.php", nullptr, "Host: example.com\n",
     "split ^(.+\\.php)(/.*)?$\nparam PATH_INFO $fastcgi_path_info",
     "SCRIPT_NAME=/x.php\nPATH_INFO=", 0},
    {"split: encoded slash decoded into PATH_INFO", "GET /a.php/x%2Fy", "/a.php/x/y",
     "Host: example.com\n", "split ^(.+\\.php)(/.+)$\nparam PATH_INFO $fastcgi_path_info",
     "PATH_INFO=/x/y\nREQUEST_URI=/a.php/x%2Fy", 0},
    {"split: %0a in path refused (CVE-2019-11043)", "GET /index.php/x%0a.php", "/index.php/x\n.php",
     "Host: example.com\n", "split ^(.+\\.php)(/.+)$", "", 400},
    {"split: %0d in path refused", "GET /index.php/x%0d.php", "/index.php/x\r.php",
     "Host: example.com\n", "split ^(.+\\.php)(/.+)$", "", 400},
    {"split: %00 in path refused", "GET /a.jpg%00.php", "/a.jpg<NUL>.php", "Host: example.com\n",
     "split ^(.+\\.php)(/.+)$", "", 400},
    {"%0a refused even without a split regex", "GET /index.php%0a", "/index.php\n",
     "Host: example.com\n", "", "", 400},
    {"%0a refused with a DOTALL-safe regex too", "GET /i.php/%0a", "/i.php/\n",
     "Host: example.com\n", "split (?s)^(.+\\.php)(/.*)$", "", 400},
    {"%0a in query is fine", "GET /index.php?x=%0a", nullptr, "Host: example.com\n", "",
     "QUERY_STRING=x=%0a", 0},
    {"PATH_TRANSLATED with path info", "GET /index.php/foo", nullptr, "Host: example.com\n",
     "split ^(.+\\.php)(/.+)$\nparam PATH_TRANSLATED $fastcgi_path_translated if_not_empty",
     "PATH_TRANSLATED=/var/www/html/foo", 0},
    {"PATH_TRANSLATED unset without path info", "GET /index.php", nullptr, "Host: example.com\n",
     "split ^(.+\\.php)(/.+)$\nparam PATH_TRANSLATED $fastcgi_path_translated if_not_empty",
     "!PATH_TRANSLATED", 0},
    {"PATH_INFO if_not_empty absent when empty", "GET /index.php", nullptr, "Host: example.com\n",
     "split ^(.+\\.php)(/.+)$\nparam PATH_INFO $fastcgi_path_info if_not_empty", "!PATH_INFO", 0},
    {"split survives try_files redirect", "GET /index.php/foo", "/index.php", "Host: example.com\n",
     "split ^(.+\\.php)(/.+)$\npresplit /index.php/foo\nparam PATH_INFO $fastcgi_path_info",
     "PATH_INFO=/foo\nSCRIPT_NAME=/index.php\nDOCUMENT_URI=/index.php", 0},
    {"split + index for dir with path info", "GET /app/", nullptr, "Host: example.com\n",
     "split ^(.+\\.php)(/.+)$\nindex index.php", "SCRIPT_NAME=/app/index.php", 0},
    {"app mounted at root: empty SCRIPT_NAME allowed", "GET /foo", nullptr, "Host: example.com\n",
     "split ^()(/.*)$\nparam PATH_INFO $fastcgi_path_info", "SCRIPT_NAME=\nPATH_INFO=/foo", 0},

    // --- header filtering ---
    {"Proxy header never passed (httpoxy)", "GET /index.php", nullptr,
     "Host: example.com\nProxy: http://evil.test:3128\n", "", "!HTTP_PROXY", 0},
    {"user HTTP_PROXY param wins, header dropped", "GET /index.php", nullptr,
     "Host: example.com\nProxy: http://evil.test\n", "param HTTP_PROXY -", "HTTP_PROXY=", 0},
    {"underscore header dropped by default", "GET /index.php", nullptr,
     "Host: example.com\nX-Forwarded_For: 6.6.6.6\n", "", "!HTTP_X_FORWARDED_FOR", 0},
    {"underscore header passed when allowed", "GET /index.php", nullptr,
     "Host: example.com\nX_Custom: 1\n", "underscores", "HTTP_X_CUSTOM=1", 0},
    {"underscore/dash collision refused", "GET /index.php", nullptr,
     "Host: example.com\nX-A_B: 1\nX-A-B: 2\n", "underscores", "", 400},
    {"underscore/dash collision irrelevant when dropped", "GET /index.php", nullptr,
     "Host: example.com\nX-A_B: 1\nX-A-B: 2\n", "", "HTTP_X_A_B=2", 0},
    {"same name different case is a duplicate, not a collision", "GET /index.php", nullptr,
     "Host: example.com\nX-Id: 1\nx-id: 2\n", "underscores", "HTTP_X_ID=1, 2", 0},
    {"duplicate headers joined with comma", "GET /index.php", nullptr,
     "Host: example.com\nAccept: text/html\nX-Trace: a\nAccept: application/json\n", "",
     "HTTP_ACCEPT=text/html, application/json\nHTTP_X_TRACE=a", 0},
    {"three duplicates", "GET /index.php", nullptr, "Host: example.com\nX-L: 1\nX-L: 2\nX-L: 3\n",
     "", "HTTP_X_L=1, 2, 3", 0},
    {"cookies joined with semicolon", "GET /index.php", nullptr,
     "Host: example.com\nCookie: a=1\nCookie: b=2\n", "", "HTTP_COOKIE=a=1; b=2", 0},
    {"single cookie untouched", "GET /index.php", nullptr, "Host: example.com\nCookie: a=1; b=2\n",
     "", "HTTP_COOKIE=a=1; b=2", 0},
    {"hop-by-hop dropped", "GET /index.php", nullptr,
     "Host: example.com\nConnection: keep-alive\nKeep-Alive: 300\nTE: trailers\nUpgrade: h2c\n"
     "Proxy-Connection: keep-alive\nTrailer: X\n",
     "",
     "!HTTP_CONNECTION\n!HTTP_KEEP_ALIVE\n!HTTP_TE\n!HTTP_UPGRADE\n!HTTP_PROXY_CONNECTION\n"
     "!HTTP_TRAILER",
     0},
    {"Connection-listed header dropped", "GET /index.php", nullptr,
     "Host: example.com\nConnection: close, X-Secret\nX-Secret: s\nX-Open: o\n", "",
     "!HTTP_X_SECRET\nHTTP_X_OPEN=o", 0},
    {"Authorization passed by default", "GET /index.php", nullptr,
     "Host: example.com\nAuthorization: Basic dTpw\n", "", "HTTP_AUTHORIZATION=Basic dTpw", 0},
    {"Authorization dropped when configured off", "GET /index.php", nullptr,
     "Host: example.com\nAuthorization: Basic dTpw\n", "no_auth", "!HTTP_AUTHORIZATION", 0},
    {"Proxy-Authorization dropped by default", "GET /index.php", nullptr,
     "Host: example.com\nProxy-Authorization: Basic eDp5\n", "", "!HTTP_PROXY_AUTHORIZATION", 0},
    {"Proxy-Authorization passed when configured", "GET /index.php", nullptr,
     "Host: example.com\nProxy-Authorization: Basic eDp5\n", "proxy_auth",
     "HTTP_PROXY_AUTHORIZATION=Basic eDp5", 0},
    {"user HTTP_X param overrides client header", "GET /index.php", nullptr,
     "Host: example.com\nX-Real-IP: 6.6.6.6\n", "param HTTP_X_REAL_IP $remote_addr",
     "HTTP_X_REAL_IP=192.0.2.10", 0},
    {"override with if_not_empty and empty value still hides header", "GET /index.php", nullptr,
     "Host: example.com\nX-Debug: 1\n", "param HTTP_X_DEBUG - if_not_empty", "!HTTP_X_DEBUG", 0},
    {"user HTTP_HOST replaces the default", "GET /index.php", nullptr, "Host: example.com\n",
     "param HTTP_HOST fixed.test", "HTTP_HOST=fixed.test", 0},
    {"HTTP_HOST from absolute-form authority", "GET http://abs.test:8080/index.php", "/index.php",
     "Host: ignored.test\n", "host abs.test 8080", "HTTP_HOST=abs.test:8080", 0},
    {"HTTP_HOST present without Host line (HTTP/1.0)", "GET /index.php", nullptr, "",
     "host example.com -", "HTTP_HOST=example.com", 0},
    {"fastcgi_pass_request_headers off", "GET /index.php", nullptr,
     "Host: example.com\nX-A: 1\nCookie: c=1\n", "no_headers",
     "!HTTP_X_A\n!HTTP_COOKIE\nHTTP_HOST=example.com", 0},
    {"invalid header name characters dropped", "GET /index.php", nullptr,
     "Host: example.com\nX.Dot: 1\nX-Ok: 2\n", "", "!HTTP_X.DOT\nHTTP_X_OK=2", 0},
    {"header value kept byte-exact", "GET /index.php", nullptr,
     "Host: example.com\nX-Json: {\"a\": [1, 2]}\n", "", "HTTP_X_JSON={\"a\": [1, 2]}", 0},
    {"empty header value passed", "GET /index.php", nullptr, "Host: example.com\nX-Empty: \n", "",
     "HTTP_X_EMPTY=", 0},
    {"header name case folded", "GET /index.php", nullptr, "Host: example.com\nx-mIxEd-case: v\n",
     "", "HTTP_X_MIXED_CASE=v", 0},

    // --- params ---
    {"if_not_empty skips empty value", "GET /index.php", nullptr, "Host: example.com\n",
     "param REMOTE_USER $remote_user if_not_empty", "!REMOTE_USER", 0},
    {"param with server variable", "GET /index.php", nullptr, "Host: example.com\nX-Tenant: acme\n",
     "param TENANT $http_x_tenant", "TENANT=acme", 0},
    {"param with capture", "GET /index.php", nullptr, "Host: example.com\n",
     "param CAPTURE pre-$1-post", "CAPTURE=pre-CAP1-post", 0},
    {"param with braces", "GET /index.php", nullptr, "Host: example.com\n",
     "param JOIN ${scheme}://${host}${request_uri}", "JOIN=http://example.com/index.php", 0},
    {"unknown variable is empty", "GET /index.php", nullptr, "Host: example.com\n",
     "param X $no_such_variable", "X=", 0},
    {"no_stock: only own params", "GET /index.php", nullptr, "Host: example.com\n",
     "no_stock\nparam ONLY 1", "#2\nONLY=1\nHTTP_HOST=example.com\n!SCRIPT_FILENAME", 0},
    {"realpath_root variable", "GET /index.php", nullptr, "Host: example.com\n",
     "param SCRIPT_FILENAME2 $realpath_root$fastcgi_script_name",
     "SCRIPT_FILENAME2=/srv/www/index.php", 0},
    {"variable names are case-insensitive", "GET /index.php", nullptr, "Host: example.com\n",
     "param M $REQUEST_METHOD", "M=GET", 0},
};

struct RecordingSink final : EnvSink {
    std::vector<std::pair<std::string, std::string>> env;
    void put(std::string_view name, std::string_view value) override {
        env.emplace_back(std::string(name), std::string(value));
    }
};

// The server's side of variable lookup, as the lead's callback would answer.
struct FakeServer {
    const CgiInput *in = nullptr;
};

bool fake_lookup(void *ctx, std::string_view name, std::string &out) {
    auto *server = static_cast<FakeServer *>(ctx);
    if (name == "portico_version") {
        out += "0.9.0";
        return true;
    }
    if (name == "1") {
        out += "CAP1";
        return true;
    }
    if (name.starts_with("http_")) {
        std::string_view want = name.substr(5);
        for (const HeaderView &h : server->in->headers) {
            if (h.name.size() != want.size()) continue;
            bool same = true;
            for (std::size_t i = 0; i < want.size() && same; ++i) {
                char c = static_cast<char>(std::tolower(static_cast<unsigned char>(h.name[i])));
                same = (c == '-' ? '_' : c) == want[i];
            }
            if (same) {
                out += h.value;
                return true;
            }
        }
    }
    return false;
}

std::vector<std::string> lines(std::string_view text) {
    std::vector<std::string> out;
    while (!text.empty()) {
        std::size_t nl = text.find('\n');
        out.emplace_back(text.substr(0, nl));
        if (nl == std::string_view::npos) break;
        text.remove_prefix(nl + 1);
    }
    return out;
}

std::vector<std::string> words(const std::string &line) {
    std::istringstream in(line);
    std::vector<std::string> out;
    for (std::string w; in >> w;)
        out.push_back(w == "-" ? "" : w);
    return out;
}

bool load_stock(ParamList &list) {
    std::ifstream file("conf/fastcgi.conf");
    if (!file) return false;
    std::string line, err;
    while (std::getline(file, line)) {
        if (!line.starts_with("fastcgi_param")) continue;
        line.erase(line.find(';'));
        std::vector<std::string> w = words(line);
        bool if_not_empty = w.size() == 4 && w[3] == "if_not_empty";
        if (!list.add(w[1], w[2], if_not_empty, err)) return false;
    }
    return true;
}

// Everything a row's request needs to stay alive while the builder runs. A
// deque never moves its elements, so views into `store` stay valid.
struct Case {
    std::deque<std::string> store;
    std::vector<HeaderView> headers;
    ParamList params;
    std::optional<SplitPathInfo> split;
    EnvConfig conf;
    CgiInput in;
    std::string error;

    std::string_view keep(std::string text) { return store.emplace_back(std::move(text)); }
};

// "<NUL>" in a row's uri stands for a NUL byte, which a C string cannot hold.
std::string unescape_nul(std::string text) {
    for (std::size_t at; (at = text.find("<NUL>")) != std::string::npos;)
        text.replace(at, 5, std::string(1, '\0'));
    return text;
}

bool prepare(const Row &row, Case &c) {
    std::string_view request = row.request;
    std::size_t sp = request.find(' ');
    c.in.method = request.substr(0, sp);
    c.in.request_uri = request.substr(sp + 1);
    std::string_view target = c.in.request_uri;
    if (target.starts_with("http://")) target = target.substr(target.find('/', 7));
    std::size_t q = target.find('?');
    c.in.args = q == std::string_view::npos ? "" : target.substr(q + 1);
    c.in.uri = row.uri ? c.keep(unescape_nul(row.uri)) : target.substr(0, q);
    c.in.document_root = "/var/www/html";
    c.in.realpath_root = "/srv/www";
    c.in.server_name = "example.com";
    c.in.server_addr = "127.0.0.1";
    c.in.server_port = "80";
    c.in.remote_addr = "192.0.2.10";
    c.in.remote_port = "54321";
    c.in.host = "example.com";
    c.in.server_protocol = "HTTP/1.1";

    for (const std::string &h : lines(row.headers)) {
        std::string_view line = c.keep(h);
        std::size_t colon = line.find(':');
        std::string_view value = line.substr(colon + 1);
        while (!value.empty() && value.front() == ' ')
            value.remove_prefix(1);
        std::string_view name = line.substr(0, colon);
        c.headers.push_back({name, value});
        if (name == "Content-Type") c.in.content_type = value;
        if (name == "Content-Length") c.in.content_length = value;
    }
    c.in.headers = c.headers;

    bool stock = true;
    HeaderPolicyConfig policy;
    std::vector<std::vector<std::string>> own;
    for (const std::string &line : lines(row.config)) {
        std::vector<std::string> w = words(line);
        if (w.empty()) continue;
        const std::string &d = w[0];
        if (d == "split") {
            c.split = SplitPathInfo::compile(line.substr(6), c.error);
            if (!c.split) return false;
            c.conf.split = &*c.split;
        } else if (d == "index") {
            c.in.fastcgi_index = c.keep(w[1]);
        } else if (d == "underscores") {
            policy.underscores_in_headers = true;
        } else if (d == "no_auth") {
            policy.pass_authorization = false;
        } else if (d == "proxy_auth") {
            policy.pass_proxy_authorization = true;
        } else if (d == "no_headers") {
            c.conf.pass_request_headers = false;
        } else if (d == "no_stock") {
            stock = false;
        } else if (d == "param") {
            own.push_back(w);
        } else if (d == "https") {
            c.in.https = true;
        } else if (d == "remote") {
            c.in.remote_addr = c.keep(w[1]);
            c.in.remote_port = c.keep(w[2]);
        } else if (d == "server_port") {
            c.in.server_port = c.keep(w[1]);
        } else if (d == "length") {
            c.in.content_length = c.keep(w[1]);
        } else if (d == "presplit") {
            // The split was computed before an internal redirect changed $uri.
            std::string_view before = c.keep(w[1]);
            SplitStatus st = c.split ? c.split->split(before, c.in.fastcgi_index, c.in.split)
                                     : split_without_regex(before, c.in.fastcgi_index, c.in.split);
            if (st != SplitStatus::ok) return false;
        } else if (d == "host") {
            c.in.host = c.keep(w[1]);
            c.in.request_port = c.keep(w[2]);
        } else {
            c.error = "unknown test directive " + d;
            return false;
        }
    }
    c.conf.policy = HeaderPolicy(policy);
    if (stock && !load_stock(c.params)) {
        c.error = "cannot load conf/fastcgi.conf (run from the repository root)";
        return false;
    }
    for (const auto &w : own)
        if (!c.params.add(w[1], w[2], w.size() > 3 && w[3] == "if_not_empty", c.error))
            return false;
    c.conf.params = &c.params;
    return true;
}

// Compares one row; prints every mismatch with the row's name.
int check_row(const Row &row) {
    Case c;
    if (!prepare(row, c)) {
        std::printf("  [%s] setup failed: %s\n", row.name, c.error.c_str());
        return 1;
    }
    FakeServer server{&c.in};
    RecordingSink sink;
    std::string scratch;
    std::optional<Refusal> refused =
        build_env(c.in, c.conf, Variables{fake_lookup, &server}, sink, scratch);
    int status = refused ? refused->status : 0;
    if (status != row.status) {
        std::printf("  [%s] status %d, want %d (%s)\n", row.name, status, row.status,
                    refused ? std::string(refused->reason).c_str() : "built");
        return 1;
    }
    if (refused && !sink.env.empty()) {
        std::printf("  [%s] refused after %zu variables were emitted\n", row.name, sink.env.size());
        return 1;
    }
    int failures = 0;
    for (std::size_t i = 0; i < sink.env.size(); ++i)
        for (std::size_t j = 0; j < i; ++j)
            if (sink.env[i].first == sink.env[j].first) {
                std::printf("  [%s] %s emitted twice\n", row.name, sink.env[i].first.c_str());
                ++failures;
            }
    std::size_t order = 0; // "NAME=value" lines of a "#N" row must also come in order
    bool ordered = std::string_view(row.expect).starts_with("#");
    for (const std::string &line : lines(row.expect)) {
        if (line.empty()) continue;
        if (line[0] == '#') {
            std::size_t want = std::stoul(line.substr(1));
            if (sink.env.size() != want) {
                std::printf("  [%s] %zu variables, want %zu\n", row.name, sink.env.size(), want);
                ++failures;
            }
            continue;
        }
        if (line[0] == '!') {
            for (const auto &[n, v] : sink.env)
                if (n == line.substr(1)) {
                    std::printf("  [%s] %s present (=%s), want absent\n", row.name, n.c_str(),
                                v.c_str());
                    ++failures;
                }
            continue;
        }
        std::size_t eq = line.find('=');
        std::string name = line.substr(0, eq), value = line.substr(eq + 1);
        bool found = false;
        for (std::size_t i = 0; i < sink.env.size(); ++i) {
            if (sink.env[i].first != name) continue;
            found = true;
            if (sink.env[i].second != value) {
                std::printf("  [%s] %s=\"%s\", want \"%s\"\n", row.name, name.c_str(),
                            sink.env[i].second.c_str(), value.c_str());
                ++failures;
            }
            if (ordered && i != order++) {
                std::printf("  [%s] %s at position %zu, want %zu\n", row.name, name.c_str(), i,
                            order - 1);
                ++failures;
            }
        }
        if (!found) {
            std::printf("  [%s] %s missing\n", row.name, name.c_str());
            ++failures;
        }
    }
    return failures;
}

void test_env_rows(void **) {
    int failures = 0;
    for (const Row &row : rows)
        failures += check_row(row);
    std::printf("  %zu rows, %d failures\n", std::size(rows), failures);
    assert_int_equal(failures, 0);
}

// A refusal must not depend on the order of the colliding pair.
void test_collision_reports_header(void **) {
    HeaderView hs[] = {{"X-A-B", "1"}, {"Host", "h"}, {"x-a_b", "2"}};
    CgiInput in;
    in.uri = "/i.php";
    in.headers = hs;
    EnvConfig conf;
    conf.policy = HeaderPolicy(HeaderPolicyConfig{true, true, false});
    RecordingSink sink;
    std::string scratch;
    auto refused = build_env(in, conf, {}, sink, scratch);
    assert_true(refused.has_value());
    assert_int_equal(refused->status, 400);
    assert_true(refused->detail == "x-a_b");
    assert_int_equal(sink.env.size(), 0);
}

void test_named_variables(void **) {
    CgiInput in;
    in.uri = "/dir/";
    in.args = "a=1";
    in.request_uri = "/dir/?a=1";
    in.document_root = "/r";
    in.fastcgi_index = "index.php";
    assert_null(ensure_split(in, nullptr).has_value() ? "refused" : nullptr);
    std::string out;
    append_fastcgi_script_name(in, out);
    assert_string_equal(out.c_str(), "/dir/index.php");
    out.clear();
    append_path_translated(in, out);
    assert_string_equal(out.c_str(), "");
    assert_true(query_string(in) == "a=1");
    assert_true(document_uri(in) == "/dir/");
    assert_true(https(in).empty());
    in.https = true;
    assert_true(https(in) == "on" && scheme(in) == "https");
    out.clear();
    assert_true(cgi_variable(in, "is_args", out) && out == "?");
    assert_false(cgi_variable(in, "http_host", out));
}

void test_stock_file_loads(void **) {
    ParamList list;
    assert_true(load_stock(list));
    assert_int_equal(list.params().size(), 20);
    assert_string_equal(list.params()[0].name.c_str(), "SCRIPT_FILENAME");
    assert_true(list.sets("https"));
    assert_true(list.params()[11].if_not_empty); // HTTPS
}

void test_params_compile(void **) {
    struct {
        const char *name, *value;
        bool ok;
    } cases[] = {
        {"A", "$host", true}, {"A", "${host}x", true}, {"A", "pre$1post", true},
        {"A", "100%", true},  {"A", "$", false},       {"A", "${host", false},
        {"A", "${}", false},  {"A", "a$-b", false},    {"", "x", false},
        {"A B", "x", false},  {"A=B", "x", false},     {"A\nB", "x", false},
    };
    for (auto &c : cases) {
        ParamList list;
        std::string err;
        bool ok = list.add(c.name, c.value, false, err);
        if (ok != c.ok) std::printf("  [%s %s] ok=%d err=%s\n", c.name, c.value, ok, err.c_str());
        assert_int_equal(ok, c.ok);
        assert_true(ok || !err.empty());
    }
    ParamList list;
    std::string err;
    assert_true(list.add("X", "a${b}$10c", false, err));
    const auto &v = list.params()[0].value.segments;
    assert_int_equal(v.size(), 4);
    assert_string_equal(v[0].text.c_str(), "a");
    assert_true(v[1].is_var && v[1].text == "b" && v[1].capture == -1);
    assert_true(v[2].is_var && v[2].capture == 1);
    assert_true(!v[3].is_var && v[3].text == "0c");
}

void test_inherit(void **) {
    ParamList parent, child, empty;
    std::string err;
    assert_true(parent.add("SCRIPT_FILENAME", "$document_root$fastcgi_script_name", false, err));
    assert_true(child.add("APP_ENV", "prod", false, err));
    // nginx: one param at a level drops every inherited one
    assert_true(&inherit_params(child, parent) == &child);
    assert_true(&inherit_params(empty, parent) == &parent);
}

void test_lint_php_value(void **) {
    struct {
        const char *name, *value;
        const char *finding; // nullptr = none
    } cases[] = {
        {"PHP_VALUE", "auto_prepend_file=$http_x_file", "$http_x_file"},
        {"PHP_ADMIN_VALUE", "open_basedir=$document_root", nullptr},
        {"PHP_VALUE", "error_log=/var/log/$host.log", "$host"},
        {"PHP_VALUE", "x=$arg_x", "$arg_x"},
        {"PHP_VALUE", "x=$args", "$args"},
        {"PHP_VALUE", "x=$query_string", "$query_string"},
        {"PHP_VALUE", "x=$request_uri", "$request_uri"},
        {"PHP_VALUE", "x=$uri", "$uri"},
        {"PHP_VALUE", "x=$cookie_sid", "$cookie_sid"},
        {"PHP_VALUE", "x=$1", "$1"},
        {"php_value", "x=${http_a}", "$http_a"},
        {"PHP_VALUE", "memory_limit=256M", nullptr},
        {"PHP_VALUE", "x=$server_name", nullptr},
        {"APP_VALUE", "x=$http_x", nullptr}, // only PHP-FPM's ini params are code
    };
    for (auto &c : cases) {
        ParamList list;
        std::string err;
        assert_true(list.add(c.name, c.value, false, err));
        auto findings = lint_php_value_params(list);
        if (c.finding == nullptr) {
            assert_int_equal(findings.size(), 0);
        } else {
            assert_int_equal(findings.size(), 1);
            assert_string_equal(findings[0].variable.c_str(), c.finding);
            assert_string_equal(findings[0].param.c_str(), c.name);
        }
    }
}

} // namespace

int main() {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_env_rows),        cmocka_unit_test(test_collision_reports_header),
        cmocka_unit_test(test_named_variables), cmocka_unit_test(test_stock_file_loads),
        cmocka_unit_test(test_params_compile),  cmocka_unit_test(test_inherit),
        cmocka_unit_test(test_lint_php_value),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
