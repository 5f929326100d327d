# the http_proxy module drives its backend sockets with libevent bufferevents
# on the worker's event_base (handed over through pt_host->event_base), and
# speaks TLS to https:// upstreams itself (libevent_openssl + OpenSSL)
LIBS_http_proxy = $(EVENT_LIBS) $(SSL_LIBS)
