// Name-value pairs: the 1- and 4-byte lengths, the PARAMS writer's record
// packing (pairs kept whole per record while they fit, spanning only past a
// record), the decoder, and random round trips.
#include <csetjmp>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
extern "C" { // cmocka.h has no C++ guard of its own
#include <cmocka.h>
}

#include <random>
#include <string>
#include <utility>
#include <vector>

#include "fastcgi/params_writer.h"
#include "fastcgi/record.h"

using namespace portico::fastcgi;

namespace {

using Pairs = std::vector<std::pair<std::string, std::string>>;

// Splits `out` into PARAMS records for `id` with the real reader; checks the
// framing rules PHP-FPM enforces and that the stream ends with an empty record.
std::vector<std::string> params_records(std::string_view out, std::uint16_t id) {
    std::vector<std::string> records;
    RecordReader reader;
    std::string current;
    bool ended = false;
    while (!out.empty()) {
        ReadResult r = reader.feed(out);
        assert_int_equal(r.status, ReadStatus::Record);
        assert_false(ended);
        assert_int_equal(r.record.kind(), RecordType::Params);
        assert_int_equal(r.record.request_id, id);
        current.append(r.record.content);
        if (r.record.last) {
            if (r.record.end_of_stream())
                ended = true;
            else
                records.push_back(std::move(current));
            current.clear();
        }
        out.remove_prefix(r.consumed);
    }
    assert_true(ended);
    assert_true(reader.at_record_boundary());
    return records;
}

Pairs decode_all(std::string_view bytes) {
    Pairs pairs;
    NameValueReader reader(bytes);
    NameValue nv;
    PairStatus s;
    while ((s = reader.next(nv)) == PairStatus::Pair)
        pairs.emplace_back(nv.name, nv.value);
    if (s == PairStatus::Error) fail_msg("decode error: %s", std::string(reader.error()).c_str());
    return pairs;
}

std::string joined(const std::vector<std::string> &records) {
    std::string all;
    for (const auto &r : records)
        all += r;
    return all;
}

void length_encoding_boundaries(void **) {
    const struct {
        std::size_t length;
        std::size_t encoded;
        std::string_view prefix;
    } rows[] = {
        {0, 1, {"\x00", 1}},
        {1, 1, "\x01"},
        {127, 1, "\x7f"},
        {128, 4, {"\x80\x00\x00\x80", 4}},
        {255, 4, {"\x80\x00\x00\xff", 4}},
        {256, 4, {"\x80\x00\x01\x00", 4}},
        {65535, 4, {"\x80\x00\xff\xff", 4}},
        {70000, 4, {"\x80\x01\x11\x70", 4}},
    };
    for (const auto &row : rows) {
        assert_int_equal(length_size(row.length), row.encoded);
        // as a name
        std::string name(row.length, 'n');
        std::string out;
        assert_true(append_name_value(out, name, "v").empty());
        assert_int_equal(out.size(), row.encoded + 1 + row.length + 1);
        assert_memory_equal(out.data(), row.prefix.data(), row.prefix.size());
        assert_int_equal(out[row.encoded], 1);
        assert_int_equal(name_value_size(name, "v"), out.size());
        Pairs back = decode_all(out);
        assert_int_equal(back.size(), 1);
        assert_true(back[0].first == name && back[0].second == "v");
        // as a value
        out.clear();
        assert_true(append_name_value(out, "N", name).empty());
        assert_int_equal(out[0], 1);
        assert_memory_equal(out.data() + 1, row.prefix.data(), row.prefix.size());
        back = decode_all(out);
        assert_true(back[0].first == "N" && back[0].second == name);
    }
}

void refuses_lengths_over_2_31(void **) {
    // Only the length is looked at before the refusal, so a view that claims
    // 2 GiB over a small buffer is safe to pass.
    static const char small[8] = {};
    std::string_view huge(small, kMaxNameValueLength + 1);
    std::string out = "before";
    assert_true(append_name_value(out, huge, "v") ==
                "FastCGI parameter name longer than 2^31-1 bytes");
    assert_true(append_name_value(out, "n", huge) ==
                "FastCGI parameter value longer than 2^31-1 bytes");
    assert_true(out == "before");

    ParamsWriter writer(out, 1);
    writer.put("A", "1");
    writer.put("HTTP_X", huge);
    assert_true(writer.failed());
    assert_true(writer.error() == "FastCGI parameter value longer than 2^31-1 bytes");
    writer.put("B", "2"); // ignored once failed
    assert_int_equal(writer.pairs(), 1);
}

void small_pairs_byte_for_byte(void **) {
    std::string out;
    ParamsWriter writer(out, 0x0203);
    writer.put("AB", "xyz");
    writer.finish();
    writer.finish(); // once only
    // pair: 1+1+2+3 = 7 bytes, padded to 8; then the empty PARAMS record
    std::string_view expected("\x01\x04\x02\x03\x00\x07\x01\x00"
                              "\x02\x03"
                              "ABxyz"
                              "\x00"
                              "\x01\x04\x02\x03\x00\x00\x00\x00",
                              24);
    assert_int_equal(out.size(), expected.size());
    assert_memory_equal(out.data(), expected.data(), expected.size());

    out.clear();
    ParamsWriter empty(out, 1);
    empty.finish();
    assert_int_equal(out.size(), 8);
    assert_true(params_records(out, 1).empty());

    ParamsWriter late(out, 1);
    late.finish();
    late.put("X", "y");
    assert_true(late.failed());
}

void value_of_70k_spans_records(void **) {
    std::string value(70 * 1024, '\0');
    for (std::size_t i = 0; i < value.size(); ++i)
        value[i] = static_cast<char>('a' + i % 26);
    std::string out;
    ParamsWriter writer(out, 7);
    writer.put("SCRIPT_FILENAME", "/srv/www/index.php");
    writer.put("HTTP_COOKIE", value);
    writer.put("QUERY_STRING", "a=1");
    writer.finish();
    assert_false(writer.failed());
    std::vector<std::string> records = params_records(out, 7);
    assert_int_equal(records.size(), 2);
    for (const auto &r : records)
        assert_true(r.size() <= kMaxRecordContent);
    assert_int_equal(records[0].size(), kMaxRecordContent);
    Pairs back = decode_all(joined(records));
    assert_int_equal(back.size(), 3);
    assert_true(back[0].first == "SCRIPT_FILENAME" && back[0].second == "/srv/www/index.php");
    assert_true(back[1].first == "HTTP_COOKIE" && back[1].second == value);
    assert_true(back[2].first == "QUERY_STRING" && back[2].second == "a=1");
}

void pairs_stay_whole_while_they_fit(void **) {
    // PHP-FPM decodes every PARAMS record on its own: any pair that fits in a
    // record must not straddle two.
    std::string out;
    ParamsWriter writer(out, 1);
    Pairs sent;
    for (int i = 0; i < 200; ++i) {
        std::string name = "HTTP_X_" + std::to_string(i);
        std::string value(900 + i * 3, static_cast<char>('A' + i % 26));
        writer.put(name, value);
        sent.emplace_back(name, value);
    }
    writer.finish();
    std::vector<std::string> records = params_records(out, 1);
    assert_true(records.size() >= 4);
    Pairs back;
    for (const auto &r : records) {
        Pairs part = decode_all(r); // fails the test if a pair was cut
        back.insert(back.end(), part.begin(), part.end());
    }
    assert_true(back == sent);
}

void record_boundary_rows(void **) {
    // The first pair takes `first` bytes of the record; the second pair is
    // `second` bytes: it joins the record only if it fits whole.
    const std::size_t pair_overhead = 1 + 4 + 1; // name "A"/"B", value >= 128
    const struct {
        std::size_t first;
        std::size_t second;
        std::size_t records;
    } rows[] = {
        {kMaxRecordContent - 200, 200, 1},   // exactly fills the record
        {kMaxRecordContent - 200, 201, 2},   // one byte over: a new record
        {kMaxRecordContent, 200, 2},         // first pair fills a record alone
        {kMaxRecordContent - 200, 70000, 3}, // too big for any record: spans
        {200, kMaxRecordContent, 2},         // the largest pair that is kept whole
        {200, kMaxRecordContent + 1, 2},     // one more byte: spans from the open record
    };
    for (const auto &row : rows) {
        std::string out;
        ParamsWriter writer(out, 1);
        std::string v1(row.first - pair_overhead, 'x');
        std::string v2(row.second - pair_overhead, 'y');
        writer.put("A", v1);
        writer.put("B", v2);
        writer.finish();
        std::vector<std::string> records = params_records(out, 1);
        assert_int_equal(records.size(), row.records);
        Pairs back = decode_all(joined(records));
        assert_int_equal(back.size(), 2);
        assert_true(back[0].second == v1 && back[1].second == v2);
        if (row.second <= kMaxRecordContent) assert_true(decode_all(records.back()).size() >= 1);
    }
}

void random_round_trips(void **) {
    std::mt19937 rng(20240601);
    const std::size_t interesting[] = {0,   1,   126,  127,   128,   129,
                                       255, 256, 4096, 65527, 65528, 65529};
    for (int round = 0; round < 60; ++round) {
        std::string out = "prefix-kept";
        std::uint16_t id = static_cast<std::uint16_t>(1 + rng() % 65535);
        ParamsWriter writer(out, id);
        Pairs sent;
        int n = 1 + static_cast<int>(rng() % 40);
        for (int i = 0; i < n; ++i) {
            auto pick = [&]() -> std::size_t {
                if (rng() % 4 == 0) return interesting[rng() % std::size(interesting)];
                return rng() % 300;
            };
            std::string name(pick(), '\0'), value(pick(), '\0');
            for (char &c : name)
                c = static_cast<char>(rng());
            for (char &c : value)
                c = static_cast<char>(rng());
            writer.put(name, value);
            sent.emplace_back(std::move(name), std::move(value));
        }
        writer.finish();
        assert_false(writer.failed());
        assert_true(out.compare(0, 11, "prefix-kept") == 0);
        std::vector<std::string> records = params_records(std::string_view(out).substr(11), id);
        assert_true(decode_all(joined(records)) == sent);
    }
}

void decoder_refusals(void **) {
    const struct {
        std::string_view input;
        const char *error;
    } rows[] = {
        {"\x80", "truncated FastCGI name-value length"},
        {{"\x80\x00\x00", 3}, "truncated FastCGI name-value length"},
        {"\x01", "truncated FastCGI name-value length"},
        {{"\x01\x00", 2}, "FastCGI name-value pair runs past its input"},
        {{"\x00\x02"
          "a",
          3},
         "FastCGI name-value pair runs past its input"},
        {{"\xff\xff\xff\xff\x00", 5}, "FastCGI name-value pair runs past its input"},
        {{"\x00\xff\xff\xff\xff", 5}, "FastCGI name-value pair runs past its input"},
        {{"\x01\x01"
          "ab"
          "\x05",
          5},
         "truncated FastCGI name-value length"},
    };
    for (const auto &row : rows) {
        NameValueReader reader(row.input);
        NameValue nv;
        PairStatus s;
        while ((s = reader.next(nv)) == PairStatus::Pair) {
        }
        assert_int_equal(s, PairStatus::Error);
        assert_string_equal(std::string(reader.error()).c_str(), row.error);
        assert_int_equal(reader.next(nv), PairStatus::Error); // sticky
    }
    NameValueReader empty("");
    NameValue nv;
    assert_int_equal(empty.next(nv), PairStatus::End);
}

} // namespace

int main() {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(length_encoding_boundaries),
        cmocka_unit_test(refuses_lengths_over_2_31),
        cmocka_unit_test(small_pairs_byte_for_byte),
        cmocka_unit_test(value_of_70k_spans_records),
        cmocka_unit_test(pairs_stay_whole_while_they_fit),
        cmocka_unit_test(record_boundary_rows),
        cmocka_unit_test(random_round_trips),
        cmocka_unit_test(decoder_refusals),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
