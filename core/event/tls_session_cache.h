#pragma once
// ssl_session_cache shared:NAME:SIZE — a TLS session-ID cache every worker
// shares (nginx's semantics): shared memory mapped by the master while it
// loads the configuration, so the workers it forks inherit it; fixed slots
// of serialized sessions (i2d_SSL_SESSION) under one process-shared robust
// mutex. A reload that names the zone again with the same size keeps it
// (and its sessions), as nginx does.
#include <cstdint>
#include <memory>
#include <string>

typedef struct ssl_ctx_st SSL_CTX;

namespace portico {

class SessionZone;

// The zone called `name` of `size` bytes: the live one when a previous
// configuration made it with the same size, else a new mapping. nullptr and
// `err` when mmap fails or the size is too small for one slot.
std::shared_ptr<SessionZone> session_zone(const std::string &name, int64_t size, std::string &err);
const std::string &session_zone_name(const SessionZone &z);
int64_t session_zone_size(const SessionZone &z);
// Makes `ctx` store, look up and remove its server sessions in `z` (which
// must outlive it: the TlsConf holding the context holds the zone too).
void session_zone_attach(SSL_CTX *ctx, SessionZone *z);

} // namespace portico
