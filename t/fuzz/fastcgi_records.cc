// Arbitrary bytes through the FastCGI RecordReader, fed in fuzzer-chosen
// pieces, compared with the same bytes fed whole; name-value pairs found in
// the input are pushed through ParamsWriter and must come back intact.
// fuzz-sources: modules/fastcgi/record.cc modules/fastcgi/params_writer.cc
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "fastcgi/params_writer.h"
#include "fastcgi/record.h"

using namespace portico::fastcgi;

namespace {

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) __builtin_trap();                                                             \
    } while (0)

struct Event {
    std::uint8_t type;
    std::uint16_t id;
    std::string content;
    std::uint32_t app_status;
    int protocol_status;
    bool operator==(const Event &) const = default;
};

struct Outcome {
    std::vector<Event> events;
    std::string_view error;
    bool boundary = false;
};

Outcome decode(std::string_view input, std::string_view cuts, std::size_t max_piece) {
    RecordReader reader;
    Outcome out;
    Event open{};
    bool in_record = false;
    std::size_t cut_index = 0;
    while (!input.empty()) {
        std::size_t n = input.size();
        if (cut_index < cuts.size())
            n = std::min<std::size_t>(n, 1 + static_cast<unsigned char>(cuts[cut_index++]));
        std::string_view chunk = input.substr(0, n);
        input.remove_prefix(n);
        for (;;) {
            ReadResult r = reader.feed(chunk, max_piece);
            if (r.status == ReadStatus::Error) {
                CHECK(!r.error.empty());
                CHECK(reader.failed());
                out.error = r.error;
                return out;
            }
            if (r.status == ReadStatus::Again) {
                CHECK(r.consumed == chunk.size());
                break;
            }
            CHECK(r.consumed <= chunk.size());
            const Record &rec = r.record;
            CHECK(rec.content.size() <= rec.content_length);
            if (rec.first) {
                CHECK(!in_record);
                open = Event{rec.type, rec.request_id, {}, 0, -1};
                in_record = true;
            } else {
                CHECK(in_record && open.type == rec.type && open.id == rec.request_id);
            }
            open.content.append(rec.content);
            CHECK(open.content.size() <= rec.content_length);
            if (rec.last) {
                CHECK(open.content.size() == rec.content_length);
                if (rec.kind() == RecordType::EndRequest) {
                    open.app_status = rec.end_request.app_status;
                    open.protocol_status = static_cast<int>(rec.end_request.protocol_status);
                    CHECK(!to_string(rec.end_request.protocol_status).empty());
                }
                if (rec.kind() == RecordType::GetValuesResult) {
                    GetValuesResult values;
                    (void)decode_get_values_result(open.content, values);
                }
                out.events.push_back(std::move(open));
                in_record = false;
            }
            chunk.remove_prefix(r.consumed);
        }
    }
    out.boundary = reader.at_record_boundary();
    return out;
}

// Pairs decoded from the input go through the writer and back.
void params_round_trip(std::string_view input) {
    NameValueReader reader(input);
    NameValue nv;
    std::vector<NameValue> pairs;
    while (reader.next(nv) == PairStatus::Pair)
        pairs.push_back(nv);
    std::string out;
    ParamsWriter writer(out, 1);
    for (const NameValue &p : pairs)
        writer.put(p.name, p.value);
    writer.finish();
    CHECK(!writer.failed());
    Outcome records = decode(out, {}, SIZE_MAX);
    CHECK(records.error.empty() && records.boundary);
    CHECK(!records.events.empty() && records.events.back().content.empty());
    std::string stream;
    for (const Event &e : records.events) {
        CHECK(e.type == static_cast<std::uint8_t>(RecordType::Params) && e.id == 1);
        CHECK(e.content.size() <= kMaxRecordContent);
        stream += e.content;
    }
    NameValueReader back(stream);
    for (const NameValue &p : pairs) {
        CHECK(back.next(nv) == PairStatus::Pair);
        CHECK(nv.name == p.name && nv.value == p.value);
    }
    CHECK(back.next(nv) == PairStatus::End);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
    if (size < 2) return 0;
    // byte 0: max piece; byte 1: how many cut bytes follow; then the records.
    std::size_t max_piece = data[0] == 0 ? SIZE_MAX : data[0];
    std::size_t ncuts = std::min<std::size_t>(data[1] % 16, size - 2);
    std::string_view cuts(reinterpret_cast<const char *>(data) + 2, ncuts);
    std::string_view input(reinterpret_cast<const char *>(data) + 2 + ncuts, size - 2 - ncuts);

    Outcome whole = decode(input, {}, SIZE_MAX);
    Outcome pieces = decode(input, cuts, max_piece);
    CHECK(whole.error == pieces.error);
    CHECK(whole.events == pieces.events);
    CHECK(whole.boundary == pieces.boundary);

    params_round_trip(input);
    return 0;
}
