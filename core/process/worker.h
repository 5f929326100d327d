#pragma once
#include "http/conf.h"

#include <event2/event.h>

#include <unordered_set>
#include <vector>

namespace portico {
struct Connection;

struct Worker {
    Cycle *cycle = nullptr;
    event_base *base = nullptr;
    std::vector<event *> listeners; // one read event per listening socket
    std::vector<event *> signals;
    event *drain_timer = nullptr;
    std::unordered_set<Connection *> conns;
    bool draining = false;
    uint64_t next_conn_id = 1;
    int slot = 0;
};

Worker *current_worker();
// Runs the event loop of one worker until it stops; returns the exit status.
int worker_run(Cycle *cycle, int slot);
void worker_stop_accepting(Worker *w);
} // namespace portico
