# the http_proxy module drives its backend sockets with libevent bufferevents
# on the worker's event_base (handed over through pt_host->event_base)
LIBS_http_proxy = $(EVENT_LIBS)
