// The request ids of one multiplexed FastCGI connection and the stream each
// one belongs to: the demultiplexing table. Pure code, no I/O.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace portico::fastcgi {

enum class IdState : std::uint8_t {
    Free,    // never used, or its END_REQUEST has been seen
    Active,  // a stream is attached and waits for its records
    Aborted, // ABORT_REQUEST sent: reserved until the app's END_REQUEST, so
             // its late STDOUT can never reach a new stream that reused it
};

class RequestIdTable {
  public:
    // Ids run from 1 to capacity (id 0 is FCGI_NULL_REQUEST_ID, §3.3).
    explicit RequestIdTable(std::size_t capacity = 1) { set_capacity(capacity); }

    // FCGI_MAX_REQS may arrive after streams were attached to an optimistic
    // guess; ids above a lowered capacity stay valid until released.
    void set_capacity(std::size_t capacity);
    std::size_t capacity() const { return capacity_; }

    // The lowest free id (§3.3 asks clients to keep ids small, and a peer
    // that sizes its table by FCGI_MAX_REQS expects them dense), or 0 when
    // the connection already carries `capacity` requests.
    std::uint16_t acquire(void *stream);
    // The stream of an Active id; nullptr for a Free or Aborted one.
    void *find(std::uint16_t id) const;
    IdState state(std::uint16_t id) const;
    // The stream went away before END_REQUEST: the id stays taken.
    void abandon(std::uint16_t id);
    void release(std::uint16_t id);

    // Ids not Free (Aborted ones count: the app still works on them).
    std::size_t in_use() const { return in_use_; }
    std::size_t active() const { return active_; }
    bool full() const { return in_use_ >= capacity_; }
    // Every stream attached right now, for a connection-level failure.
    std::vector<void *> streams() const;

  private:
    struct Slot {
        IdState state = IdState::Free;
        void *stream = nullptr;
    };
    std::vector<Slot> slots_; // slots_[id - 1]
    std::size_t capacity_ = 1;
    std::size_t in_use_ = 0;
    std::size_t active_ = 0;
    std::size_t lowest_free_ = 0; // index; every slot below it is taken
};

} // namespace portico::fastcgi
