#include "request_ids.h"

#include <algorithm>

namespace portico::fastcgi {

namespace {
constexpr std::size_t kMaxId = 0xffff;
}

void RequestIdTable::set_capacity(std::size_t capacity) {
    capacity_ = std::clamp<std::size_t>(capacity, 1, kMaxId);
}

std::uint16_t RequestIdTable::acquire(void *stream) {
    if (full()) return 0;
    std::size_t i = lowest_free_;
    while (i < slots_.size() && slots_[i].state != IdState::Free)
        i++;
    if (i == slots_.size()) {
        if (i >= kMaxId) return 0;
        slots_.emplace_back();
    }
    slots_[i] = {IdState::Active, stream};
    in_use_++;
    active_++;
    lowest_free_ = i + 1;
    return static_cast<std::uint16_t>(i + 1);
}

void *RequestIdTable::find(std::uint16_t id) const {
    if (id == 0 || id > slots_.size()) return nullptr;
    const Slot &s = slots_[id - 1];
    return s.state == IdState::Active ? s.stream : nullptr;
}

IdState RequestIdTable::state(std::uint16_t id) const {
    if (id == 0 || id > slots_.size()) return IdState::Free;
    return slots_[id - 1].state;
}

void RequestIdTable::abandon(std::uint16_t id) {
    if (state(id) != IdState::Active) return;
    slots_[id - 1] = {IdState::Aborted, nullptr};
    active_--;
}

void RequestIdTable::release(std::uint16_t id) {
    IdState st = state(id);
    if (st == IdState::Free) return;
    if (st == IdState::Active) active_--;
    slots_[id - 1] = {};
    in_use_--;
    lowest_free_ = std::min<std::size_t>(lowest_free_, id - 1);
    // trailing free slots are dropped so a burst does not pin the table's size
    while (!slots_.empty() && slots_.back().state == IdState::Free)
        slots_.pop_back();
}

std::vector<void *> RequestIdTable::streams() const {
    std::vector<void *> out;
    for (const Slot &s : slots_)
        if (s.state == IdState::Active) out.push_back(s.stream);
    return out;
}

} // namespace portico::fastcgi
