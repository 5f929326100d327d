# the default file cache reads its inotify queue from an event on the
# worker's event_base (handed over through pt_host->event_base)
LIBS_static = $(EVENT_LIBS)
