// Request ids of a multiplexed FastCGI connection (modules/fastcgi/
// request_ids.h): lowest free id first, the capacity from FCGI_MAX_REQS,
// aborted ids held until END_REQUEST, and the table used as the demux of an
// interleaved record stream.
#include "support/cmocka_cxx.h"

#include <map>
#include <string>
#include <vector>

#include "fastcgi/record.h"
#include "fastcgi/request_ids.h"

using namespace portico::fastcgi;

namespace {

int tag[300]; // distinct stream pointers

void lowest_free_id_is_reused(void **) {
    RequestIdTable t(8);
    for (int i = 1; i <= 5; i++)
        assert_int_equal(t.acquire(&tag[i]), i);
    t.release(2);
    t.release(4);
    assert_int_equal(t.in_use(), 3);
    assert_int_equal(t.acquire(&tag[10]), 2);
    assert_int_equal(t.acquire(&tag[11]), 4);
    assert_int_equal(t.acquire(&tag[12]), 6);
    t.release(1);
    assert_int_equal(t.acquire(&tag[13]), 1);
    // releasing the top ids shrinks the table; the next id is dense again
    t.release(6);
    t.release(5);
    assert_int_equal(t.acquire(&tag[14]), 5);
    assert_ptr_equal(t.find(5), &tag[14]);
    assert_ptr_equal(t.find(2), &tag[10]);
}

void capacity_is_honoured(void **) {
    RequestIdTable t(3);
    assert_int_equal(t.acquire(&tag[1]), 1);
    assert_int_equal(t.acquire(&tag[2]), 2);
    assert_int_equal(t.acquire(&tag[3]), 3);
    assert_true(t.full());
    assert_int_equal(t.acquire(&tag[4]), 0); // 0: open another connection
    t.release(2);
    assert_false(t.full());
    assert_int_equal(t.acquire(&tag[4]), 2);
    // FCGI_MAX_REQS lowered after streams were attached: they stay, no new one
    t.set_capacity(2);
    assert_true(t.full());
    assert_int_equal(t.acquire(&tag[5]), 0);
    assert_ptr_equal(t.find(3), &tag[3]);
    t.release(3);
    assert_true(t.full());
    t.release(1);
    assert_int_equal(t.acquire(&tag[6]), 1);
    // capacity is clamped to 1..65535
    t.set_capacity(0);
    assert_int_equal(t.capacity(), 1);
    t.set_capacity(1u << 20);
    assert_int_equal(t.capacity(), 65535);
}

void id_zero_and_unknown_ids(void **) {
    RequestIdTable t(4);
    assert_null(t.find(0));
    assert_null(t.find(1));
    assert_null(t.find(65535));
    assert_int_equal(int(t.state(0)), int(IdState::Free));
    assert_int_equal(t.acquire(&tag[1]), 1); // never FCGI_NULL_REQUEST_ID
    t.release(3);                            // releasing a free id changes nothing
    t.release(0);
    assert_int_equal(t.in_use(), 1);
}

void aborted_id_is_held_until_end_request(void **) {
    RequestIdTable t(4);
    assert_int_equal(t.acquire(&tag[1]), 1);
    assert_int_equal(t.acquire(&tag[2]), 2);
    t.abandon(1);
    assert_int_equal(int(t.state(1)), int(IdState::Aborted));
    assert_null(t.find(1)); // its late records reach no stream
    assert_int_equal(t.in_use(), 2);
    assert_int_equal(t.active(), 1);
    assert_int_equal(t.acquire(&tag[3]), 3); // 1 is not reused before END_REQUEST
    t.release(1);                            // the app's END_REQUEST
    assert_int_equal(t.acquire(&tag[4]), 1);
    assert_ptr_equal(t.find(1), &tag[4]);
    t.abandon(3);
    t.abandon(3); // twice: no effect
    assert_int_equal(t.active(), 2);
    std::vector<void *> live = t.streams();
    assert_int_equal(live.size(), 2);
    assert_ptr_equal(live[0], &tag[4]);
    assert_ptr_equal(live[1], &tag[2]);
}

void many_ids(void **) {
    RequestIdTable t(256);
    for (int i = 1; i <= 256; i++)
        assert_int_equal(t.acquire(&tag[i % 300]), i);
    assert_int_equal(t.acquire(&tag[0]), 0);
    for (int i = 256; i >= 1; i -= 2)
        t.release(std::uint16_t(i));
    for (int i = 2; i <= 256; i += 2)
        assert_int_equal(t.acquire(&tag[0]), i);
    assert_int_equal(t.in_use(), 256);
}

// The demux of mux.cc's read loop, without its I/O: interleaved records of
// three streams, fed at every split point, reach the stream their id names;
// an aborted stream's records are dropped and its END_REQUEST frees the id.
struct Sink {
    std::string out;
    bool ended = false;
};

void demux_interleaved_records(void **) {
    std::string wire;
    append_stream(wire, RecordType::Stdout, 1, "one-a ");
    append_stream(wire, RecordType::Stdout, 2, "two-a ");
    append_stream(wire, RecordType::Stdout, 3, "three-a ");
    append_stream(wire, RecordType::Stdout, 2, std::string(70000, 'x'));
    append_stream(wire, RecordType::Stderr, 1, "ignored");
    append_stream(wire, RecordType::Stdout, 1, "one-b");
    append_header(wire, RecordType::GetValuesResult, 0, 0, 0); // management: id 0
    append_header(wire, RecordType::EndRequest, 2, 8, 0);
    wire.append(8, '\0');
    append_stream(wire, RecordType::Stdout, 9, "unknown id");
    append_header(wire, RecordType::EndRequest, 1, 8, 0);
    wire.append(8, '\0');
    append_header(wire, RecordType::EndRequest, 3, 8, 0);
    wire.append(8, '\0');

    for (std::size_t split : {std::size_t(1), std::size_t(7), std::size_t(8), std::size_t(13),
                              std::size_t(4096), wire.size()}) {
        RequestIdTable t(8);
        Sink s[4];
        assert_int_equal(t.acquire(&s[1]), 1);
        assert_int_equal(t.acquire(&s[2]), 2);
        assert_int_equal(t.acquire(&s[3]), 3);
        t.abandon(3); // its client left: ABORT_REQUEST was sent
        RecordReader reader;
        std::size_t mgmt = 0;
        for (std::size_t at = 0; at < wire.size(); at += split) {
            std::string_view in = std::string_view(wire).substr(at, split);
            while (!in.empty()) {
                ReadResult r = reader.feed(in);
                assert_true(r.status != ReadStatus::Error);
                in.remove_prefix(r.consumed);
                if (r.status != ReadStatus::Record) continue;
                const Record &rec = r.record;
                if (rec.request_id == FCGI_NULL_REQUEST_ID) {
                    mgmt++;
                    continue;
                }
                if (t.state(rec.request_id) == IdState::Aborted) {
                    if (rec.kind() == RecordType::EndRequest) t.release(rec.request_id);
                    continue;
                }
                auto *sink = static_cast<Sink *>(t.find(rec.request_id));
                if (!sink) continue; // §3.3: an inactive id is ignored
                if (rec.kind() == RecordType::Stdout) sink->out.append(rec.content);
                if (rec.kind() == RecordType::EndRequest) {
                    sink->ended = true;
                    t.release(rec.request_id);
                }
            }
        }
        assert_string_equal(s[1].out.c_str(), "one-a one-b");
        assert_int_equal(s[2].out.size(), 6 + 70000);
        assert_true(s[2].out.starts_with("two-a xxx"));
        assert_true(s[3].out.empty());
        assert_true(s[1].ended && s[2].ended && !s[3].ended);
        assert_int_equal(mgmt, 1);
        assert_int_equal(t.in_use(), 0); // the aborted id came back with its END_REQUEST
        assert_int_equal(t.acquire(&s[0]), 1);
    }
}

} // namespace

int main() {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(lowest_free_id_is_reused),
        cmocka_unit_test(capacity_is_honoured),
        cmocka_unit_test(id_zero_and_unknown_ids),
        cmocka_unit_test(aborted_id_is_held_until_end_request),
        cmocka_unit_test(many_ids),
        cmocka_unit_test(demux_interleaved_records),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
