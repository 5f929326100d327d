// FastCGI record codec: encoders byte for byte, the reader across every split
// point, its strictness, and encode/decode round trips.
#include <csetjmp>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <cstring>
extern "C" { // cmocka.h has no C++ guard of its own
#include <cmocka.h>
}

#include <algorithm>
#include <array>
#include <random>
#include <string>
#include <vector>

#include "fastcgi/params_writer.h"
#include "fastcgi/record.h"

using namespace portico::fastcgi;

namespace {

// A decoded record with its stream pieces joined.
struct Event {
    std::uint8_t type;
    std::uint16_t id;
    std::string content;
    std::uint32_t app_status = 0;
    int protocol_status = -1;
    bool operator==(const Event &) const = default;
};

struct Decoded {
    std::vector<Event> events;
    std::string error;
    std::size_t pieces = 0;
};

// Raw record bytes, any header values, for the reader's negative cases.
std::string raw(std::uint8_t version, std::uint8_t type, std::uint16_t id, std::string_view content,
                std::uint8_t padding) {
    std::string out;
    out.push_back(static_cast<char>(version));
    out.push_back(static_cast<char>(type));
    out.push_back(static_cast<char>(id >> 8));
    out.push_back(static_cast<char>(id & 0xff));
    out.push_back(static_cast<char>(content.size() >> 8));
    out.push_back(static_cast<char>(content.size() & 0xff));
    out.push_back(static_cast<char>(padding));
    out.push_back(0);
    out.append(content);
    out.append(padding, 'P'); // padding content is never looked at
    return out;
}

std::string end_request_body(std::uint32_t app_status, std::uint8_t protocol_status) {
    std::string b(8, '\0');
    b[0] = static_cast<char>(app_status >> 24);
    b[1] = static_cast<char>(app_status >> 16);
    b[2] = static_cast<char>(app_status >> 8);
    b[3] = static_cast<char>(app_status);
    b[4] = static_cast<char>(protocol_status);
    return b;
}

bool is_stream_type(std::uint8_t type) {
    switch (type) {
    case 1:
    case 2:
    case 3:
    case 9:
    case 10:
    case 11:
        return false;
    default:
        return true;
    }
}

// Feeds `input` cut at `cuts` (sorted offsets), draining each chunk as a real
// caller does, and checks the reader's contract on the way.
Decoded decode(std::string_view input, const std::vector<std::size_t> &cuts,
               std::size_t max_piece = SIZE_MAX) {
    RecordReader reader;
    Decoded d;
    Event open{};
    bool in_record = false;
    std::size_t prev = 0;
    for (std::size_t i = 0; i <= cuts.size(); ++i) {
        std::size_t end = i < cuts.size() ? cuts[i] : input.size();
        std::string_view chunk = input.substr(prev, end - prev);
        prev = end;
        for (;;) {
            ReadResult r = reader.feed(chunk, max_piece);
            if (r.status == ReadStatus::Error) {
                d.error = std::string(r.error);
                return d;
            }
            if (r.status == ReadStatus::Again) {
                assert_int_equal(r.consumed, chunk.size());
                break;
            }
            assert_true(r.consumed <= chunk.size());
            if (is_stream_type(r.record.type))
                assert_true(r.record.content.size() <= std::max<std::size_t>(max_piece, 1));
            ++d.pieces;
            const Record &rec = r.record;
            if (rec.first) {
                assert_false(in_record);
                open = Event{rec.type, rec.request_id, {}, 0, -1};
                in_record = true;
            } else {
                assert_true(in_record);
                assert_int_equal(open.type, rec.type);
                assert_int_equal(open.id, rec.request_id);
            }
            open.content.append(rec.content);
            if (rec.last) {
                assert_int_equal(open.content.size(), rec.content_length);
                if (rec.kind() == RecordType::EndRequest) {
                    open.app_status = rec.end_request.app_status;
                    open.protocol_status = static_cast<int>(rec.end_request.protocol_status);
                }
                d.events.push_back(open);
                in_record = false;
            }
            chunk.remove_prefix(r.consumed);
        }
    }
    assert_false(in_record);
    assert_true(reader.at_record_boundary());
    return d;
}

// GET_VALUES_RESULT, STDOUT and STDERR interleaved with odd paddings, an
// empty STDOUT (end of stream), END_REQUEST.
std::string sample_stream(std::vector<Event> &expected) {
    std::string gv;
    append_name_value(gv, "FCGI_MPXS_CONNS", "1");
    std::string s;
    s += raw(1, 10, 0, gv, 5);
    s += raw(1, 6, 1, "Status: 200\r\n", 3);
    s += raw(1, 7, 1, "PHP Warning", 0);
    s += raw(1, 6, 1, "\r\nhello", 255);
    s += raw(1, 7, 1, "", 0);
    s += raw(1, 6, 1, "", 0);
    s += raw(1, 3, 1, end_request_body(0x01020304, 0), 0);
    expected = {
        {10, 0, gv, 0, -1},
        {6, 1, "Status: 200\r\n", 0, -1},
        {7, 1, "PHP Warning", 0, -1},
        {6, 1, "\r\nhello", 0, -1},
        {7, 1, "", 0, -1},
        {6, 1, "", 0, -1},
        {3, 1, end_request_body(0x01020304, 0), 0x01020304, 0},
    };
    return s;
}

void assert_events(const Decoded &d, const std::vector<Event> &expected) {
    if (!d.error.empty()) fail_msg("unexpected error: %s", d.error.c_str());
    assert_int_equal(d.events.size(), expected.size());
    for (std::size_t i = 0; i < expected.size(); ++i) {
        if (!(d.events[i] == expected[i]))
            fail_msg("event %zu differs: type %u id %u content \"%s\"", i, d.events[i].type,
                     d.events[i].id, d.events[i].content.c_str());
    }
}

void every_split_point(void **) {
    std::vector<Event> expected;
    std::string s = sample_stream(expected);
    assert_events(decode(s, {}), expected);
    for (std::size_t a = 0; a <= s.size(); ++a)
        assert_events(decode(s, {a}), expected);
}

void every_pair_of_split_points(void **) {
    std::vector<Event> expected;
    std::string s = sample_stream(expected);
    for (std::size_t a = 0; a <= s.size(); ++a)
        for (std::size_t b = a; b <= s.size(); ++b)
            assert_events(decode(s, {a, b}), expected);
}

void byte_at_a_time_and_small_pieces(void **) {
    std::vector<Event> expected;
    std::string s = sample_stream(expected);
    std::vector<std::size_t> cuts;
    for (std::size_t i = 1; i < s.size(); ++i)
        cuts.push_back(i);
    assert_events(decode(s, cuts), expected);
    for (std::size_t max_piece : {std::size_t{0}, std::size_t{1}, std::size_t{3}, std::size_t{8}}) {
        assert_events(decode(s, {}, max_piece), expected);
        for (std::size_t a = 0; a <= s.size(); ++a)
            assert_events(decode(s, {a}, max_piece), expected);
    }
}

void end_request_each_protocol_status(void **) {
    const struct {
        std::uint8_t status;
        ProtocolStatus expected;
        std::string_view name;
    } rows[] = {
        {0, ProtocolStatus::RequestComplete, "REQUEST_COMPLETE"},
        {1, ProtocolStatus::CantMpxConn, "CANT_MPX_CONN"},
        {2, ProtocolStatus::Overloaded, "OVERLOADED"},
        {3, ProtocolStatus::UnknownRole, "UNKNOWN_ROLE"},
    };
    for (const auto &row : rows) {
        std::string s = raw(1, 3, 7, end_request_body(0xfffffffe, row.status), 0);
        for (std::size_t a = 0; a <= s.size(); ++a) {
            Decoded d = decode(s, {a});
            assert_int_equal(d.events.size(), 1);
            assert_int_equal(d.events[0].app_status, 0xfffffffe);
            assert_int_equal(d.events[0].protocol_status, static_cast<int>(row.expected));
        }
        assert_true(to_string(row.expected) == row.name);
    }
    Decoded bad = decode(raw(1, 3, 7, end_request_body(0, 4), 0), {});
    assert_string_equal(bad.error.c_str(), "FastCGI END_REQUEST with an unknown protocolStatus");
}

void refusals(void **) {
    std::string gv_bad = "\x0f\x05"
                         "FCGI_MAX_CONNS"; // value runs past the record
    const struct {
        std::string input;
        const char *error;
    } rows[] = {
        {raw(0, 6, 1, "x", 7), "FastCGI record version is not 1"},
        {raw(2, 6, 1, "x", 7), "FastCGI record version is not 1"},
        {"HTTP/1.1 200 OK\r\n\r\n", "FastCGI record version is not 1"},
        {raw(1, 3, 1, std::string(7, '\0'), 1), "FastCGI END_REQUEST body is not 8 bytes"},
        {raw(1, 3, 1, std::string(9, '\0'), 7), "FastCGI END_REQUEST body is not 8 bytes"},
        {raw(1, 1, 1, "", 0), "FastCGI BEGIN_REQUEST body is not 8 bytes"},
        {raw(1, 11, 0, "x", 7), "FastCGI UNKNOWN_TYPE body is not 8 bytes"},
        {raw(1, 2, 1, "x", 7), "FastCGI ABORT_REQUEST has a body"},
        {raw(1, 6, 0, "x", 7), "FastCGI application record on request id 0"},
        {raw(1, 3, 0, end_request_body(0, 0), 0), "FastCGI application record on request id 0"},
        {raw(1, 10, 1, "", 0), "FastCGI management record on a non-zero request id"},
        {raw(1, 9, 3, "", 0), "FastCGI management record on a non-zero request id"},
        {raw(1, 10, 0, gv_bad, 0), "FastCGI name-value pair runs past its input"},
        {raw(1, 10, 0, "\x80\x00", 6), "truncated FastCGI name-value length"},
        // a good record first: the error is met in the middle of a stream
        {raw(1, 6, 1, "ok", 6) + raw(9, 6, 1, "", 0), "FastCGI record version is not 1"},
    };
    for (const auto &row : rows) {
        for (std::size_t a = 0; a <= row.input.size(); ++a) {
            Decoded d = decode(row.input, {a});
            assert_string_equal(d.error.c_str(), row.error);
        }
    }
    // Errors are sticky: a desynchronised connection stays refused.
    RecordReader reader;
    assert_int_equal(reader.feed(raw(2, 6, 1, "", 0)).status, ReadStatus::Error);
    assert_int_equal(reader.feed(raw(1, 6, 1, "", 0)).status, ReadStatus::Error);
    assert_true(reader.failed());
    reader.reset();
    assert_int_equal(reader.feed(raw(1, 6, 1, "", 0)).status, ReadStatus::Record);
}

void unknown_types_are_reported(void **) {
    // §4.2: the caller answers FCGI_UNKNOWN_TYPE (or ignores it); the reader
    // only has to deliver the record intact and stay in sync.
    std::string s = raw(1, 42, 0, "future", 2) + raw(1, 0, 5, "zero", 4) +
                    raw(1, 11, 0, std::string("\x2a\0\0\0\0\0\0\0", 8), 0) + raw(1, 6, 1, "a", 7);
    for (std::size_t a = 0; a <= s.size(); ++a) {
        Decoded d = decode(s, {a});
        assert_int_equal(d.events.size(), 4);
        assert_int_equal(d.events[0].type, 42);
        assert_string_equal(d.events[0].content.c_str(), "future");
        assert_int_equal(d.events[1].type, 0);
        assert_int_equal(d.events[2].type, 11);
        assert_int_equal(d.events[3].type, 6);
    }
    RecordReader reader;
    ReadResult r = reader.feed(raw(1, 11, 0, std::string("\x2a\0\0\0\0\0\0\0", 8), 0));
    assert_int_equal(r.status, ReadStatus::Record);
    assert_int_equal(r.record.unknown_type, 42);
    assert_false(RecordReader{}.feed(raw(1, 42, 1, "", 0)).record.known_type());
}

void largest_record_is_streamed_in_place(void **) {
    // contentLength 65535 and paddingLength 255: the largest a peer can send.
    std::string content(65535, 'z');
    content[0] = 'a';
    content[65534] = 'b';
    std::string s = raw(1, 6, 1, content, 255) + raw(1, 3, 1, end_request_body(0, 0), 0);
    RecordReader reader;
    std::string joined;
    std::size_t off = 0;
    std::size_t pieces = 0;
    bool ended = false;
    while (off < s.size()) {
        std::string_view chunk =
            std::string_view(s).substr(off, std::min<std::size_t>(1000, s.size() - off));
        for (;;) {
            ReadResult r = reader.feed(chunk);
            assert_int_not_equal(r.status, ReadStatus::Error);
            if (r.status == ReadStatus::Again) break;
            if (r.record.kind() == RecordType::Stdout) {
                // zero copy: the piece is a view of the fed chunk
                assert_true(r.record.content.empty() ||
                            (r.record.content.data() >= chunk.data() &&
                             r.record.content.data() + r.record.content.size() <=
                                 chunk.data() + chunk.size()));
                joined.append(r.record.content);
                ++pieces;
            } else {
                ended = r.record.kind() == RecordType::EndRequest;
            }
            chunk.remove_prefix(r.consumed);
        }
        off += 1000;
    }
    assert_true(joined == content);
    assert_true(pieces >= 65);
    assert_true(ended);
    assert_true(reader.at_record_boundary());
}

void whole_record_in_one_piece_points_into_input(void **) {
    std::string s = raw(1, 3, 1, end_request_body(5, 0), 0);
    RecordReader reader;
    ReadResult r = reader.feed(s);
    assert_int_equal(r.status, ReadStatus::Record);
    assert_ptr_equal(r.record.content.data(), s.data() + 8);
    assert_int_equal(r.consumed, s.size());
    // split: the reader keeps the body itself and says so by consuming all
    RecordReader split;
    assert_int_equal(split.feed(std::string_view(s).substr(0, 11)).consumed, 11);
    r = split.feed(std::string_view(s).substr(11));
    assert_int_equal(r.status, ReadStatus::Record);
    assert_int_equal(r.record.end_request.app_status, 5);
    assert_true(split.at_record_boundary());
}

void encoders_byte_for_byte(void **) {
    std::string out = "keep";
    append_begin_request(out, 0x0102, Role::Responder, true);
    assert_int_equal(out.size(), 4 + 16);
    assert_memory_equal(out.data() + 4,
                        "\x01\x01\x01\x02\x00\x08\x00\x00\x00\x01\x01\x00\x00\x00\x00\x00", 16);

    out.clear();
    append_begin_request(out, 1, Role::Authorizer, false);
    assert_memory_equal(out.data(),
                        "\x01\x01\x00\x01\x00\x08\x00\x00\x00\x02\x00\x00\x00\x00\x00\x00", 16);

    out.clear();
    append_abort_request(out, 0xfffe);
    assert_memory_equal(out.data(), "\x01\x02\xff\xfe\x00\x00\x00\x00", 8);
    assert_int_equal(out.size(), 8);

    out.clear();
    append_stream(out, RecordType::Stdin, 3, "hello");
    append_end_of_stream(out, RecordType::Stdin, 3);
    assert_int_equal(out.size(), 8 + 5 + 3 + 8);
    assert_memory_equal(
        out.data(), "\x01\x05\x00\x03\x00\x05\x03\x00hello\0\0\0\x01\x05\x00\x03\x00\x00\x00\x00",
        24);

    out.clear();
    const std::array<std::string_view, 3> names{FCGI_MAX_CONNS, FCGI_MAX_REQS, FCGI_MPXS_CONNS};
    assert_true(append_get_values(out, names));
    // 3 pairs: 2 + 14, 2 + 13, 2 + 15 = 48 bytes, already a multiple of 8
    assert_int_equal(out.size(), 8 + 48);
    assert_memory_equal(out.data(),
                        "\x01\x09\x00\x00\x00\x30\x00\x00\x0e\x00"
                        "FCGI_MAX_CONNS",
                        24);
    RecordReader reader;
    ReadResult r = reader.feed(out);
    assert_int_equal(r.status, ReadStatus::Record);
    assert_int_equal(r.record.kind(), RecordType::GetValues);

    // names that do not fit one record are refused, nothing appended
    std::string big(70000, 'N');
    const std::array<std::string_view, 1> too_big{big};
    out.clear();
    assert_false(append_get_values(out, too_big));
    assert_true(out.empty());

    assert_int_equal(padding_for(0), 0);
    assert_int_equal(padding_for(1), 7);
    assert_int_equal(padding_for(8), 0);
    assert_int_equal(padding_for(65528), 0);
}

void round_trip_stream_sizes(void **) {
    std::mt19937 rng(1234);
    for (std::size_t size : {std::size_t{0}, std::size_t{1}, std::size_t{65535}, std::size_t{65536},
                             std::size_t{200000}}) {
        std::string content(size, '\0');
        for (char &c : content)
            c = static_cast<char>(rng());
        std::string out;
        append_stream(out, RecordType::Stdout, 9, content);
        append_end_of_stream(out, RecordType::Stdout, 9);
        std::size_t records = (size + kMaxRecordContent - 1) / kMaxRecordContent + 1;
        // every record aligned, none over PHP-FPM's 0xffff content+padding
        std::size_t payload = 0;
        for (std::size_t off = 0, n = 0; off < out.size(); ++n) {
            std::size_t len = (static_cast<unsigned char>(out[off + 4]) << 8) |
                              static_cast<unsigned char>(out[off + 5]);
            std::size_t pad = static_cast<unsigned char>(out[off + 6]);
            assert_true(len + pad <= 0xffff);
            assert_int_equal((len + pad) % 8, 0);
            payload += len;
            off += 8 + len + pad;
            if (off == out.size()) assert_int_equal(n + 1, records);
        }
        assert_int_equal(payload, size);

        std::vector<std::vector<std::size_t>> cut_sets = {{}, {1}, {out.size() / 2}, {7, 8}};
        for (std::size_t i = 0; i < 20; ++i) {
            std::vector<std::size_t> cuts;
            for (std::size_t k = 0; k < 5; ++k)
                cuts.push_back(rng() % (out.size() + 1));
            std::sort(cuts.begin(), cuts.end());
            cut_sets.push_back(cuts);
        }
        for (const auto &cuts : cut_sets) {
            Decoded d = decode(out, cuts);
            assert_true(d.error.empty());
            assert_int_equal(d.events.size(), records);
            std::string joined;
            for (const Event &e : d.events) {
                assert_int_equal(e.type, 6);
                assert_int_equal(e.id, 9);
                joined += e.content;
            }
            assert_true(joined == content);
            assert_true(d.events.back().content.empty());
        }
    }
}

void get_values_result_decoded(void **) {
    const struct {
        std::vector<std::pair<std::string, std::string>> pairs;
        const char *error;
        int max_conns, max_reqs, mpxs; // -1: absent
    } rows[] = {
        {{{"FCGI_MAX_CONNS", "10"}, {"FCGI_MAX_REQS", "50"}, {"FCGI_MPXS_CONNS", "0"}},
         "",
         10,
         50,
         0},
        {{{"FCGI_MPXS_CONNS", "1"}}, "", -1, -1, 1},
        {{{"X_FUTURE", "whatever"}, {"FCGI_MAX_REQS", "4294967295"}}, "", -1, -1, -1},
        {{}, "", -1, -1, -1},
        {{{"FCGI_MAX_CONNS", ""}}, "FCGI_MAX_CONNS is not a number", -1, -1, -1},
        {{{"FCGI_MAX_REQS", "4294967296"}}, "FCGI_MAX_REQS is not a number", -1, -1, -1},
        {{{"FCGI_MAX_REQS", "-1"}}, "FCGI_MAX_REQS is not a number", -1, -1, -1},
        {{{"FCGI_MPXS_CONNS", "2"}}, "FCGI_MPXS_CONNS is not 0 or 1", -1, -1, -1},
    };
    for (const auto &row : rows) {
        std::string content;
        for (const auto &[n, v] : row.pairs)
            append_name_value(content, n, v);
        GetValuesResult result;
        std::string_view error = decode_get_values_result(content, result);
        assert_true(error == row.error);
        if (*row.error) continue;
        if (std::string_view(row.pairs.empty() ? "" : row.pairs[0].first) == "X_FUTURE") {
            assert_int_equal(*result.max_reqs, 4294967295u);
            continue;
        }
        assert_int_equal(result.max_conns.has_value(), row.max_conns >= 0);
        if (row.max_conns >= 0) assert_int_equal(*result.max_conns, row.max_conns);
        assert_int_equal(result.max_reqs.has_value(), row.max_reqs >= 0);
        if (row.max_reqs >= 0) assert_int_equal(*result.max_reqs, row.max_reqs);
        assert_int_equal(result.mpxs_conns.has_value(), row.mpxs >= 0);
        if (row.mpxs >= 0) assert_int_equal(*result.mpxs_conns, row.mpxs == 1);
    }
    GetValuesResult r;
    assert_true(decode_get_values_result("\x05", r) == "truncated FastCGI name-value length");
}

// A request encoded for id 1 is moved to another id (and KEEP_CONN on) for a
// multiplexed connection, and back; a cut buffer is refused.
void retarget_moves_every_record(void **) {
    std::string req;
    append_begin_request(req, 1, Role::Responder, false);
    append_stream(req, RecordType::Params, 1, std::string(70000, 'p'));
    append_end_of_stream(req, RecordType::Params, 1);
    append_stream(req, RecordType::Stdin, 1, "body");
    append_end_of_stream(req, RecordType::Stdin, 1);

    std::string expect;
    append_begin_request(expect, 0x1234, Role::Responder, true);
    append_stream(expect, RecordType::Params, 0x1234, std::string(70000, 'p'));
    append_end_of_stream(expect, RecordType::Params, 0x1234);
    append_stream(expect, RecordType::Stdin, 0x1234, "body");
    append_end_of_stream(expect, RecordType::Stdin, 0x1234);

    std::string moved = req;
    assert_true(retarget_records(moved, 0x1234, true));
    assert_true(moved == expect);
    assert_true(retarget_records(moved, 1, false));
    assert_true(moved == req);

    std::string cut = req.substr(0, req.size() - 3);
    assert_false(retarget_records(cut, 2, true));
    std::string empty;
    assert_true(retarget_records(empty, 2, true));
}

} // namespace

int main() {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_split_point),
        cmocka_unit_test(every_pair_of_split_points),
        cmocka_unit_test(byte_at_a_time_and_small_pieces),
        cmocka_unit_test(end_request_each_protocol_status),
        cmocka_unit_test(refusals),
        cmocka_unit_test(unknown_types_are_reported),
        cmocka_unit_test(largest_record_is_streamed_in_place),
        cmocka_unit_test(whole_record_in_one_piece_points_into_input),
        cmocka_unit_test(encoders_byte_for_byte),
        cmocka_unit_test(round_trip_stream_sizes),
        cmocka_unit_test(get_values_result_decoded),
        cmocka_unit_test(retarget_moves_every_record),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
