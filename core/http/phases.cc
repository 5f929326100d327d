// The phases a request goes through, in nginx's order: server rewrite
// (`return` at server level) → find location → body → rewrite (`return`)
// → access (internal, allow/deny, modules) → try_files → content → log.
#include "base/clock.h"
#include "http/request.h"
#include "http/uri.h"
#include "log/error_log.h"
#include "module/loader.h"

#include <arpa/inet.h>
#include <cstring>
#include <sys/stat.h>

namespace portico {
namespace {

constexpr int kMaxRedirects = 10; // nginx: NGX_HTTP_MAX_URI_CHANGES

bool is_redirect(int code) {
    return code == 301 || code == 302 || code == 303 || code == 307 || code == 308;
}

// out = a + b, under the prefix when relative; no temporaries: this runs
// for every request (the pooled request keeps the strings' capacity).
void join_path(const Request *r, std::string_view a, std::string_view b, std::string &out) {
    out.clear();
    char first = !a.empty() ? a[0] : !b.empty() ? b[0] : '/';
    if (first != '/') {
        out += r->cycle->prefix;
        out += '/';
    }
    out += a;
    out += b;
}

void compute_filename(Request *r) {
    LocationConf *l = r->loc;
    if (l->root_const < 0) {
        std::string lit = l->root->has_vars() ? std::string() : l->root->literal();
        l->root_const = !lit.empty();
        if (!lit.empty()) join_path(r, lit, {}, l->root_abs);
    }
    std::string_view rest = r->uri;
    if (l->root_const > 0 && !l->root_is_alias) {
        // the usual case: a constant root, already absolute
        r->document_root.assign(l->root_abs);
        r->filename.assign(l->root_abs);
        r->filename += rest;
        r->exten.assign(http::uri_extension(r->uri));
        return;
    }
    // not evaluated into document_root itself: the root may name $document_root
    thread_local std::string root;
    eval(r, *l->root, root);
    if (l->root_is_alias) {
        // alias replaces the location's prefix; in a regex location the
        // alias (with captures) is the whole path, as nginx.
        if (l->kind == http::LocKind::Prefix || l->kind == http::LocKind::PrefixNoRegex ||
            l->kind == http::LocKind::Exact) {
            if (rest.substr(0, l->name.size()) == l->name) rest.remove_prefix(l->name.size());
        } else {
            rest = {};
        }
    }
    join_path(r, root, {}, r->document_root);
    join_path(r, root, rest, r->filename);
    std::string_view ext = http::uri_extension(r->uri);
    r->exten.assign(ext);
}

bool find_location(Request *r) {
    http::LocationMatch m;
    ServerConf *s = r->srv;
    if (s->locations.find(r->uri, m) && m.data) {
        r->loc = static_cast<LocationConf *>(m.data);
        if (m.ncaptures > 0) {
            r->capture_subject = r->uri;
            memcpy(r->ovector, m.ovector, sizeof r->ovector);
            r->ncaptures = m.ncaptures;
        }
        if (m.error) return false;
    } else {
        r->loc = s->loc.get();
    }
    compute_filename(r);
    return true;
}

int do_return(Request *r, int code, const std::optional<ComplexValue> &text) {
    if (code == 444) {
        r->keep_alive = false;
        r->c->close_after_write = true;
        return 444;
    }
    std::string value;
    if (text) eval(r, *text, value);
    if (is_redirect(code) && text) {
        set_header(r, "Location", value, true);
        return code;
    }
    if (!text) return code ? code : 204;
    r->status = code;
    set_header(r, "Content-Type", *r->loc->default_type, true);
    r->content_length = int64_t(value.size());
    send_header(r);
    send_data(r, value.data(), value.size());
    finish_response(r);
    return PT_OK;
}

bool ip_in(const AccessRule &rule, const SockAddr &peer) {
    if (rule.all) return true;
    if (rule.family != peer.sa.sa_family) return false;
    const uint8_t *a, *b;
    if (rule.family == AF_INET) {
        a = reinterpret_cast<const uint8_t *>(&reinterpret_cast<const sockaddr_in *>(&rule.net)->sin_addr);
        b = reinterpret_cast<const uint8_t *>(&peer.in.sin_addr);
    } else if (rule.family == AF_INET6) {
        a = reinterpret_cast<const uint8_t *>(&reinterpret_cast<const sockaddr_in6 *>(&rule.net)->sin6_addr);
        b = reinterpret_cast<const uint8_t *>(&peer.in6.sin6_addr);
    } else {
        return rule.family == AF_UNIX;
    }
    int bits = rule.prefix;
    for (int i = 0; bits > 0; i++, bits -= 8) {
        uint8_t mask = bits >= 8 ? 0xff : uint8_t(0xff << (8 - bits));
        if ((a[i] & mask) != (b[i] & mask)) return false;
    }
    return true;
}

int access_phase(Request *r) {
    if (r->loc->internal && !r->internal) return 404;
    if (r->loc->access_rules) {
        for (const AccessRule &rule : *r->loc->access_rules)
            if (ip_in(rule, r->c->peer)) {
                if (rule.allow) break;
                PT_LOG(log::Err, r->c->id, "access forbidden by rule, client: %s, request: \"%.*s %.*s\"",
                       r->c->peer_addr.c_str(), int(r->head.method.size()), r->head.method.data(),
                       int(r->head.target.size()), r->head.target.data());
                return 403;
            }
    }
    for (const auto &p : r->cycle->phases[PT_PHASE_ACCESS]) {
        int rc = p.fn(r, r->loc->module_conf[p.mod->index]);
        if (rc != PT_DECLINED && rc != PT_OK) return rc;
    }
    return PT_DECLINED;
}

// try_files: the first existing file wins and becomes $uri; else the last
// argument: "=code", "@named" or a URI to redirect to.
int try_files_phase(Request *r) {
    auto &list = r->loc->try_files;
    if (list.empty()) return PT_DECLINED;
    std::string v, root, path;
    for (size_t i = 0; i + 1 < list.size(); i++) {
        eval(r, list[i], v);
        // $fastcgi_script_name of a refused path (CR/LF/NUL): answer 400 here
        if (r->split_status) return r->split_status;
        bool want_dir = !v.empty() && v.back() == '/';
        eval(r, *r->loc->root, root);
        if (r->loc->root_is_alias) {
            std::string_view rest = v;
            if (rest.substr(0, r->loc->name.size()) == r->loc->name)
                rest.remove_prefix(r->loc->name.size());
            path = root;
            path += rest;
        } else {
            path = root + v;
        }
        if (!path.empty() && path[0] != '/') path = r->cycle->prefix + "/" + path;
        struct stat st;
        if (stat(path.c_str(), &st) != 0) continue;
        if (want_dir ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode)) continue;
        if (!v.empty() && v[0] == '/') r->uri = v;
        compute_filename(r);
        return PT_DECLINED;
    }
    eval(r, list.back(), v);
    if (!v.empty() && v[0] == '=') return atoi(v.c_str() + 1);
    if (!v.empty() && v[0] == '@') {
        void *named = r->srv->locations.find_named(v);
        if (!named) {
            PT_LOG(log::Err, r->c->id, "could not find named location \"%s\"", v.c_str());
            return 500;
        }
        return named_redirect(r, static_cast<LocationConf *>(named));
    }
    std::string args;
    if (auto q = v.find('?'); q != std::string::npos) {
        args = v.substr(q + 1);
        v.resize(q);
    } else {
        args = r->args;
    }
    return internal_redirect(r, v, args);
}

int content_phase(Request *r) {
    LocationConf *l = r->loc;
    if (l->handler) return l->handler(r, l->handler_module ? l->module_conf[l->handler_module->index] : nullptr);
    for (const auto &p : r->cycle->phases[PT_PHASE_CONTENT]) {
        int rc = p.fn(r, l->module_conf[p.mod->index]);
        if (rc != PT_DECLINED) return rc;
    }
    return 404;
}

// After the location is known: everything up to content.
int do_rewrite_return(Request *r, const RewriteOp *op) {
    std::optional<ComplexValue> text;
    if (auto *t = static_cast<const ComplexValue *>(rewrite_return_text(op))) text = *t;
    return do_return(r, rewrite_return_code(op), text);
}

// The status a rewrite program ended with: its `return` (with text), or a
// redirect whose Location is set.
int rewrite_status(Request *r, int status) {
    const RewriteOp *op = r->rewrite_return;
    r->rewrite_return = nullptr;
    if (!op) return status;
    return do_rewrite_return(r, op);
}

int process_location(Request *r) {
    if (!r->loc->rewrite.empty()) {
        int status = 0;
        RewriteResult rr = run_rewrite(r, r->loc->rewrite, status);
        if (rr == RewriteResult::Status) return rewrite_status(r, status);
        if (rr == RewriteResult::NewLocation) {
            // rewrite ... last (or no flag): the new URI chooses a location again
            if (++r->redirects > kMaxRedirects) {
                PT_LOG(log::Err, r->c->id, "rewrite or internal redirection cycle while processing \"%s\"",
                       r->uri.c_str());
                return 500;
            }
            r->internal = true;
            if (!find_location(r)) return 500;
            return process_location(r);
        }
        if (r->rewrite_break) {
            r->rewrite_break = false;
            compute_filename(r);
        }
    }
    if (r->loc->return_code) return do_return(r, r->loc->return_code, r->loc->return_text);
    for (const auto &p : r->cycle->phases[PT_PHASE_REWRITE]) {
        int rc = p.fn(r, r->loc->module_conf[p.mod->index]);
        if (rc != PT_DECLINED && rc != PT_OK) return rc;
    }
    int rc = access_phase(r);
    if (rc != PT_DECLINED) return rc;
    rc = try_files_phase(r);
    if (rc != PT_DECLINED) return rc;
    return content_phase(r);
}

bool body_pending(Request *r) {
    return !r->body && (r->head.content_length > 0 || r->head.chunked);
}

// A handler (or `return`) that answers synchronously ends the request before
// its code comes back here: finish_response -> request_done frees it. Only a
// request still owned by its connection is finalized; the serial tells it
// from a pooled object reused meanwhile by a pipelined request.
struct Owner {
    Connection *c;
    Request *r;
    uint64_t serial;
    explicit Owner(Request *req) : c(req->c), r(req), serial(req->serial) {}
    void finalize(int rc) const {
        if (c->req.get() == r && r->serial == serial) finalize_request(r, rc);
    }
};

} // namespace

void run_request(Request *r) {
    if (!r->srv->rewrite.empty()) {
        int status = 0;
        // server-level rewrites run before the location is chosen
        if (run_rewrite(r, r->srv->rewrite, status) == RewriteResult::Status) {
            Owner o(r);
            o.finalize(rewrite_status(r, status));
            return;
        }
        r->rewrite_break = false;
    }
    if (r->srv->return_code) {
        Owner o(r);
        o.finalize(do_return(r, r->srv->return_code, r->srv->return_text));
        return;
    }
    if (!find_location(r)) {
        finalize_request(r, 500);
        return;
    }
    if (body_pending(r)) {
        int64_t max = *r->loc->client_max_body_size;
        if (max > 0 && r->head.content_length > max) {
            PT_LOG(log::Err, r->c->id, "client intended to send too large body: %lld bytes, client: %s",
                   (long long)r->head.content_length, r->c->peer_addr.c_str());
            r->keep_alive = false;
            r->c->close_after_write = true;
            finalize_request(r, 413);
            return;
        }
        start_body(r);
        return;
    }
    Owner o(r);
    o.finalize(process_location(r));
}

void continue_request_after_body(Request *r) {
    Owner o(r);
    o.finalize(process_location(r));
}

int internal_redirect(Request *r, std::string_view uri, std::string_view args) {
    if (++r->redirects > kMaxRedirects) {
        PT_LOG(log::Err, r->c->id, "rewrite or internal redirection cycle while internally "
                                   "redirecting to \"%.*s\"", int(uri.size()), uri.data());
        return 500;
    }
    std::string u(uri);
    r->uri = std::move(u);
    // a new URI gets its own SCRIPT_NAME / PATH_INFO (only try_files keeps
    // the split: that is where nginx loses PATH_INFO)
    r->split = {};
    r->split_status = 0;
    r->args.assign(args);
    r->internal = true;
    r->ncaptures = 0;
    r->out_headers.clear();
    if (!find_location(r)) return 500;
    return process_location(r);
}

int named_redirect(Request *r, LocationConf *named) {
    if (++r->redirects > kMaxRedirects) return 500;
    r->loc = named;
    r->internal = true;
    compute_filename(r);
    return process_location(r);
}

void finalize_request(Request *r, int rc) {
    if (rc == PT_AGAIN) {
        r->pending = true;
        return;
    }
    if (r->finished) return;
    if (rc == PT_OK || rc == PT_DONE) {
        if (!r->header_sent) send_header(r);
        finish_response(r);
        return;
    }
    if (rc == PT_ERROR) rc = 500;
    if (rc == PT_DECLINED) rc = 404;
    if (r->header_sent) {
        // too late for an error page: cut the connection so the client sees
        // an incomplete response rather than a wrong one
        r->keep_alive = false;
        r->c->close_after_write = true;
        r->last_written = true; // no final chunk: the client must see the truncation
        finish_response(r);
        return;
    }
    if (rc == 444) {
        r->status = 444;
        log_request(r);
        Connection *c = r->c;
        c->close_after_write = true;
        c->req.reset();
        bufferevent_disable(c->bev, EV_READ);
        shutdown(bufferevent_getfd(c->bev), SHUT_WR);
        return;
    }
    // error_page: internal redirect to the configured URI
    if (rc >= 300 && r->loc->error_pages && (!r->error_page || *r->loc->recursive_error_pages)) {
        for (const ErrorPage &ep : *r->loc->error_pages) {
            if (ep.code != rc) continue;
            r->error_page = true;
            std::string target;
            eval(r, ep.uri, target);
            int status = ep.overwrite > 0 ? ep.overwrite : rc;
            if (target.size() && target[0] == '@') {
                void *named = r->srv->locations.find_named(target);
                if (!named) break;
                r->error_status = ep.overwrite == -1 ? 0 : status;
                Owner o(r);
                o.finalize(named_redirect(r, static_cast<LocationConf *>(named)));
                return;
            }
            if (target.size() && target[0] != '/') {
                // an absolute URL: a client redirect (302 unless =code given)
                set_header(r, "Location", target, true);
                int code = ep.overwrite > 0 && is_redirect(ep.overwrite) ? ep.overwrite : 302;
                send_special(r, code);
                return;
            }
            // the page is served with the error's status unless "=" says otherwise
            r->error_status = ep.overwrite == -1 ? 0 : status;
            std::string args;
            if (auto q = target.find('?'); q != std::string::npos) {
                args = target.substr(q + 1);
                target.resize(q);
            }
            if (r->head.method != "HEAD") r->head.method = "GET";
            Owner o(r);
            o.finalize(internal_redirect(r, target, args));
            return;
        }
    }
    send_special(r, rc);
}

void abort_request(Request *r) { modules_abort(r); }

} // namespace portico
