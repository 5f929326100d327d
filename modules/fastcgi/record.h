// FastCGI 1.0 records: constants, encoders into a reused buffer, and an
// incremental, strict decoder. Pure code: no I/O, no core headers.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace portico::fastcgi {

// FastCGI specification §8 (types and constants).
inline constexpr std::uint8_t FCGI_VERSION_1 = 1;
inline constexpr std::size_t FCGI_HEADER_LEN = 8;
inline constexpr std::uint16_t FCGI_NULL_REQUEST_ID = 0;

enum class RecordType : std::uint8_t {
    BeginRequest = 1,
    AbortRequest = 2,
    EndRequest = 3,
    Params = 4,
    Stdin = 5,
    Stdout = 6,
    Stderr = 7,
    Data = 8,
    GetValues = 9,
    GetValuesResult = 10,
    UnknownType = 11,
};
// §8: FCGI_MAXTYPE; anything above is a type this peer does not know.
inline constexpr std::uint8_t FCGI_MAXTYPE = 11;

enum class Role : std::uint16_t { Responder = 1, Authorizer = 2, Filter = 3 };

inline constexpr std::uint8_t FCGI_KEEP_CONN = 1;

enum class ProtocolStatus : std::uint8_t {
    RequestComplete = 0,
    CantMpxConn = 1,
    Overloaded = 2,
    UnknownRole = 3,
};

// §4.1: the variables a client may ask for in FCGI_GET_VALUES.
inline constexpr std::string_view FCGI_MAX_CONNS = "FCGI_MAX_CONNS";
inline constexpr std::string_view FCGI_MAX_REQS = "FCGI_MAX_REQS";
inline constexpr std::string_view FCGI_MPXS_CONNS = "FCGI_MPXS_CONNS";

// Largest content we put in one padded record. PHP-FPM refuses a record whose
// contentLength + paddingLength exceeds 0xffff (fastcgi.c, FCGI_MAX_LENGTH),
// so a full record carries 65528 bytes: a multiple of 8 that needs no padding.
inline constexpr std::size_t kMaxRecordContent = 65528;

std::string_view to_string(RecordType type);
std::string_view to_string(ProtocolStatus status);

// nginx pads every record it sends to a multiple of 8 bytes (§3.3 recommends
// aligned records so a receiver can process them in place).
constexpr std::uint8_t padding_for(std::size_t content_length) {
    return static_cast<std::uint8_t>((8 - content_length % 8) % 8);
}
// Zero bytes to append as padding, for callers that add a body from elsewhere
// (e.g. an evbuffer chain) between a header and its padding.
inline constexpr std::string_view kPaddingBytes{"\0\0\0\0\0\0\0", 7};

using RecordHeader = std::array<char, FCGI_HEADER_LEN>;
RecordHeader make_header(RecordType type, std::uint16_t request_id, std::uint16_t content_length,
                         std::uint8_t padding_length);

// Encoders append to `out`; they never shrink it, so one buffer can be reused.
void append_header(std::string &out, RecordType type, std::uint16_t request_id,
                   std::uint16_t content_length, std::uint8_t padding_length);
void append_begin_request(std::string &out, std::uint16_t request_id, Role role, bool keep_conn);
// Stream records (PARAMS, STDIN, DATA, ...): `content` split into padded
// records of at most kMaxRecordContent bytes. Empty content appends nothing:
// the empty record means end of stream, see append_end_of_stream.
void append_stream(std::string &out, RecordType type, std::uint16_t request_id,
                   std::string_view content);
void append_end_of_stream(std::string &out, RecordType type, std::uint16_t request_id);
void append_abort_request(std::string &out, std::uint16_t request_id);
// §4.1: FCGI_GET_VALUES on the null request id; names with empty values.
// Returns false (and appends nothing) if the names do not fit in one record.
bool append_get_values(std::string &out, std::span<const std::string_view> names);
// Rewrites, in place, the request id of every record of an encoded request
// and the KEEP_CONN flag of its BEGIN_REQUEST: a request encoded once (so a
// refusal never costs a connection) is moved to the id a multiplexed
// connection hands out. False if `records` is not a whole number of records.
bool retarget_records(std::string &records, std::uint16_t request_id, bool keep_conn);

struct EndRequestBody {
    std::uint32_t app_status = 0;
    ProtocolStatus protocol_status = ProtocolStatus::RequestComplete;
};
struct BeginRequestBody {
    std::uint16_t role = 0;
    std::uint8_t flags = 0;
};

// One decoded record, or one piece of a stream record's content.
struct Record {
    std::uint8_t type = 0; // raw: may be above FCGI_MAXTYPE (an unknown type)
    std::uint16_t request_id = 0;
    std::uint16_t content_length = 0; // of the whole record
    // This piece of the content. It points into the fed input whenever the
    // piece was there in one run; otherwise into the reader's own buffer.
    // Valid until the next feed().
    std::string_view content;
    bool first = true; // the piece starts the record's content
    bool last = true;  // the piece ends it (the record is complete)

    // Decoded bodies, set for the matching type only.
    EndRequestBody end_request{};
    BeginRequestBody begin_request{};
    std::uint8_t unknown_type = 0; // body of FCGI_UNKNOWN_TYPE

    RecordType kind() const { return static_cast<RecordType>(type); }
    bool known_type() const { return type >= 1 && type <= FCGI_MAXTYPE; }
    // An empty stream record: the sender's end of that stream (§3.3).
    bool end_of_stream() const { return content_length == 0; }
};

enum class ReadStatus { Record, Again, Error };

struct ReadResult {
    ReadStatus status = ReadStatus::Again;
    std::size_t consumed = 0; // bytes of the input used; drop them before the next feed
    Record record{};          // when status == Record
    std::string_view error{}; // when status == Error: the reason, static text
};

// Incremental decoder. Feed bytes as they arrive; each call yields at most one
// record (or content piece). Stream types (PARAMS, STDIN, STDOUT, STDERR,
// DATA and unknown types) are yielded piece by piece as bytes arrive, so a
// 64 KiB STDOUT record is never held whole; management types and END_REQUEST
// are yielded whole, decoded and validated. Errors are sticky: a connection
// that spoke a malformed record cannot be trusted to be in sync again.
class RecordReader {
  public:
    RecordReader() = default;

    // `max_piece` caps the content handed out in one piece, so a caller with
    // little room downstream takes only part of a STDOUT record now.
    ReadResult feed(std::string_view in, std::size_t max_piece = SIZE_MAX);

    // Between records (nothing half-read): the connection may be reused.
    bool at_record_boundary() const { return state_ == State::Header && header_have_ == 0; }
    bool failed() const { return state_ == State::Failed; }
    void reset();

  private:
    enum class State { Header, Content, Padding, Failed };

    ReadResult refuse(std::string_view reason);
    std::string_view check_header();
    bool streamed() const;
    ReadResult finish_whole(std::string_view content, std::size_t consumed);
    std::size_t eat_padding(std::string_view in, std::size_t &pos);

    State state_ = State::Header;
    std::array<unsigned char, FCGI_HEADER_LEN> header_{};
    std::size_t header_have_ = 0;
    Record current_{};
    std::size_t content_left_ = 0;
    std::size_t padding_left_ = 0;
    bool piece_started_ = false;
    std::string whole_; // a whole-type record split across feeds, at most 64 KiB
    std::string_view error_;
};

// §4.2: the values an application reports in FCGI_GET_VALUES_RESULT.
struct GetValuesResult {
    std::optional<std::uint32_t> max_conns;
    std::optional<std::uint32_t> max_reqs;
    std::optional<bool> mpxs_conns;
};
// Decodes the content of a GET_VALUES_RESULT record. Unknown names are
// ignored (a later protocol may add some); a malformed pair or a value that is
// not a decimal number is an error with its reason.
std::string_view decode_get_values_result(std::string_view content, GetValuesResult &out);

} // namespace portico::fastcgi
