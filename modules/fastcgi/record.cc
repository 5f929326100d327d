#include "record.h"

#include <algorithm>
#include <cstring>

#include "params_writer.h"

namespace portico::fastcgi {

std::string_view to_string(RecordType type) {
    switch (type) {
    case RecordType::BeginRequest:
        return "BEGIN_REQUEST";
    case RecordType::AbortRequest:
        return "ABORT_REQUEST";
    case RecordType::EndRequest:
        return "END_REQUEST";
    case RecordType::Params:
        return "PARAMS";
    case RecordType::Stdin:
        return "STDIN";
    case RecordType::Stdout:
        return "STDOUT";
    case RecordType::Stderr:
        return "STDERR";
    case RecordType::Data:
        return "DATA";
    case RecordType::GetValues:
        return "GET_VALUES";
    case RecordType::GetValuesResult:
        return "GET_VALUES_RESULT";
    case RecordType::UnknownType:
        return "UNKNOWN_TYPE";
    }
    return "unknown record type";
}

std::string_view to_string(ProtocolStatus status) {
    switch (status) {
    case ProtocolStatus::RequestComplete:
        return "REQUEST_COMPLETE";
    case ProtocolStatus::CantMpxConn:
        return "CANT_MPX_CONN";
    case ProtocolStatus::Overloaded:
        return "OVERLOADED";
    case ProtocolStatus::UnknownRole:
        return "UNKNOWN_ROLE";
    }
    return "unknown protocolStatus";
}

RecordHeader make_header(RecordType type, std::uint16_t request_id, std::uint16_t content_length,
                         std::uint8_t padding_length) {
    // §3.3: FCGI_Header, multi-byte fields big-endian (B1 then B0).
    return RecordHeader{
        static_cast<char>(FCGI_VERSION_1),      static_cast<char>(type),
        static_cast<char>(request_id >> 8),     static_cast<char>(request_id & 0xff),
        static_cast<char>(content_length >> 8), static_cast<char>(content_length & 0xff),
        static_cast<char>(padding_length),      0};
}

void append_header(std::string &out, RecordType type, std::uint16_t request_id,
                   std::uint16_t content_length, std::uint8_t padding_length) {
    RecordHeader header = make_header(type, request_id, content_length, padding_length);
    out.append(header.data(), header.size());
}

void append_begin_request(std::string &out, std::uint16_t request_id, Role role, bool keep_conn) {
    // §5.1: FCGI_BeginRequestBody is 8 bytes, already aligned.
    append_header(out, RecordType::BeginRequest, request_id, 8, 0);
    auto r = static_cast<std::uint16_t>(role);
    const char body[8] = {static_cast<char>(r >> 8),
                          static_cast<char>(r & 0xff),
                          static_cast<char>(keep_conn ? FCGI_KEEP_CONN : 0),
                          0,
                          0,
                          0,
                          0,
                          0};
    out.append(body, sizeof body);
}

void append_stream(std::string &out, RecordType type, std::uint16_t request_id,
                   std::string_view content) {
    while (!content.empty()) {
        std::size_t n = std::min(content.size(), kMaxRecordContent);
        std::uint8_t padding = padding_for(n);
        append_header(out, type, request_id, static_cast<std::uint16_t>(n), padding);
        out.append(content.substr(0, n));
        out.append(kPaddingBytes.substr(0, padding));
        content.remove_prefix(n);
    }
}

void append_end_of_stream(std::string &out, RecordType type, std::uint16_t request_id) {
    append_header(out, type, request_id, 0, 0);
}

void append_abort_request(std::string &out, std::uint16_t request_id) {
    append_header(out, RecordType::AbortRequest, request_id, 0, 0);
}

bool append_get_values(std::string &out, std::span<const std::string_view> names) {
    std::size_t length = 0;
    for (std::string_view name : names) {
        if (name.size() > kMaxNameValueLength) return false;
        length += name_value_size(name, {});
        if (length > kMaxRecordContent) return false;
    }
    std::uint8_t padding = padding_for(length);
    append_header(out, RecordType::GetValues, FCGI_NULL_REQUEST_ID,
                  static_cast<std::uint16_t>(length), padding);
    for (std::string_view name : names)
        append_name_value(out, name, {});
    out.append(kPaddingBytes.substr(0, padding));
    return true;
}

bool retarget_records(std::string &records, std::uint16_t request_id, bool keep_conn) {
    std::size_t pos = 0;
    while (records.size() - pos >= FCGI_HEADER_LEN) {
        auto byte = [&](std::size_t i) { return static_cast<unsigned char>(records[pos + i]); };
        std::size_t length = (std::size_t(byte(4)) << 8) | byte(5);
        std::size_t total = FCGI_HEADER_LEN + length + byte(6);
        if (records.size() - pos < total) return false;
        records[pos + 2] = static_cast<char>(request_id >> 8);
        records[pos + 3] = static_cast<char>(request_id & 0xff);
        if (byte(1) == static_cast<unsigned char>(RecordType::BeginRequest) && length >= 8) {
            char &flags = records[pos + FCGI_HEADER_LEN + 2];
            flags = static_cast<char>(keep_conn ? (flags | FCGI_KEEP_CONN) : (flags & ~FCGI_KEEP_CONN));
        }
        pos += total;
    }
    return pos == records.size();
}

// ---- decoding ----------------------------------------------------------------

void RecordReader::reset() {
    state_ = State::Header;
    header_have_ = 0;
    current_ = Record{};
    content_left_ = 0;
    padding_left_ = 0;
    piece_started_ = false;
    whole_.clear();
    error_ = {};
}

ReadResult RecordReader::refuse(std::string_view reason) {
    state_ = State::Failed;
    error_ = reason;
    ReadResult r;
    r.status = ReadStatus::Error;
    r.error = reason;
    return r;
}

// Stream records are handed out as they arrive; the others are small bodies
// that only mean something whole.
bool RecordReader::streamed() const {
    switch (current_.kind()) {
    case RecordType::BeginRequest:
    case RecordType::AbortRequest:
    case RecordType::EndRequest:
    case RecordType::GetValues:
    case RecordType::GetValuesResult:
    case RecordType::UnknownType:
        return false;
    default:
        return true;
    }
}

// The shape rules of §3.3-§5: fixed body sizes, and management types only on
// the null request id, application types never on it.
std::string_view RecordReader::check_header() {
    if (header_[0] != FCGI_VERSION_1) return "FastCGI record version is not 1";
    current_ = Record{};
    current_.type = header_[1];
    current_.request_id = static_cast<std::uint16_t>(header_[2] << 8 | header_[3]);
    current_.content_length = static_cast<std::uint16_t>(header_[4] << 8 | header_[5]);
    content_left_ = current_.content_length;
    padding_left_ = header_[6];
    if (!current_.known_type()) return {}; // the caller answers or ignores it
    bool management = current_.kind() == RecordType::GetValues ||
                      current_.kind() == RecordType::GetValuesResult ||
                      current_.kind() == RecordType::UnknownType;
    if (management && current_.request_id != FCGI_NULL_REQUEST_ID)
        return "FastCGI management record on a non-zero request id";
    if (!management && current_.request_id == FCGI_NULL_REQUEST_ID)
        return "FastCGI application record on request id 0";
    switch (current_.kind()) {
    case RecordType::BeginRequest:
        if (current_.content_length != 8) return "FastCGI BEGIN_REQUEST body is not 8 bytes";
        break;
    case RecordType::EndRequest:
        if (current_.content_length != 8) return "FastCGI END_REQUEST body is not 8 bytes";
        break;
    case RecordType::UnknownType:
        if (current_.content_length != 8) return "FastCGI UNKNOWN_TYPE body is not 8 bytes";
        break;
    case RecordType::AbortRequest:
        if (current_.content_length != 0) return "FastCGI ABORT_REQUEST has a body";
        break;
    default:
        break;
    }
    return {};
}

ReadResult RecordReader::finish_whole(std::string_view content, std::size_t consumed) {
    Record &r = current_;
    auto byte = [&](std::size_t i) { return static_cast<unsigned char>(content[i]); };
    switch (r.kind()) {
    case RecordType::BeginRequest:
        r.begin_request.role = static_cast<std::uint16_t>(byte(0) << 8 | byte(1));
        r.begin_request.flags = byte(2);
        break;
    case RecordType::EndRequest:
        r.end_request.app_status = std::uint32_t{byte(0)} << 24 | std::uint32_t{byte(1)} << 16 |
                                   std::uint32_t{byte(2)} << 8 | std::uint32_t{byte(3)};
        // §5.5 defines four protocolStatus values; any other is a peer we do
        // not understand, and guessing what it meant would hide a bug.
        if (byte(4) > static_cast<unsigned char>(ProtocolStatus::UnknownRole))
            return refuse("FastCGI END_REQUEST with an unknown protocolStatus");
        r.end_request.protocol_status = static_cast<ProtocolStatus>(byte(4));
        break;
    case RecordType::UnknownType:
        r.unknown_type = byte(0);
        break;
    case RecordType::GetValues:
    case RecordType::GetValuesResult: {
        NameValueReader pairs(content);
        NameValue pair;
        PairStatus s;
        while ((s = pairs.next(pair)) == PairStatus::Pair) {
        }
        if (s == PairStatus::Error) return refuse(pairs.error());
        break;
    }
    default:
        break;
    }
    ReadResult result;
    result.status = ReadStatus::Record;
    result.record = r;
    result.record.content = content;
    result.consumed = consumed;
    state_ = State::Padding;
    return result;
}

ReadResult RecordReader::feed(std::string_view in, std::size_t max_piece) {
    if (state_ == State::Failed) return refuse(error_);
    max_piece = std::max<std::size_t>(max_piece, 1);
    std::size_t pos = 0;
    ReadResult again;
    again.status = ReadStatus::Again;

    for (;;) {
        std::size_t avail = in.size() - pos;
        switch (state_) {
        case State::Header: {
            std::size_t n = std::min(FCGI_HEADER_LEN - header_have_, avail);
            std::memcpy(header_.data() + header_have_, in.data() + pos, n);
            header_have_ += n;
            pos += n;
            if (header_have_ < FCGI_HEADER_LEN) {
                again.consumed = pos;
                return again;
            }
            header_have_ = 0;
            if (auto reason = check_header(); !reason.empty()) return refuse(reason);
            piece_started_ = false;
            whole_.clear();
            state_ = State::Content;
            break;
        }
        case State::Content: {
            if (streamed()) {
                // An empty record is yielded too: it ends its stream (§3.3).
                if (avail == 0 && content_left_ > 0) {
                    again.consumed = pos;
                    return again;
                }
                std::size_t n = std::min({avail, content_left_, max_piece});
                ReadResult result;
                result.status = ReadStatus::Record;
                result.record = current_;
                result.record.content = in.substr(pos, n);
                result.record.first = !piece_started_;
                piece_started_ = true;
                content_left_ -= n;
                pos += n;
                result.record.last = content_left_ == 0;
                if (result.record.last) state_ = State::Padding;
                result.consumed = eat_padding(in, pos);
                return result;
            }
            if (whole_.empty() && avail >= content_left_) {
                std::string_view content = in.substr(pos, content_left_);
                pos += content_left_;
                content_left_ = 0;
                ReadResult result = finish_whole(content, pos);
                if (result.status == ReadStatus::Record) result.consumed = eat_padding(in, pos);
                return result;
            }
            std::size_t n = std::min(avail, content_left_);
            whole_.append(in.substr(pos, n));
            pos += n;
            content_left_ -= n;
            if (content_left_ > 0) {
                again.consumed = pos;
                return again;
            }
            ReadResult result = finish_whole(whole_, pos);
            if (result.status == ReadStatus::Record) result.consumed = eat_padding(in, pos);
            return result;
        }
        case State::Padding: {
            eat_padding(in, pos);
            if (state_ == State::Padding) {
                again.consumed = pos;
                return again;
            }
            break;
        }
        case State::Failed:
            return refuse(error_);
        }
    }
}

// Padding after a record's content is skipped as soon as it is in the input,
// so a record followed by its padding is consumed in one step.
std::size_t RecordReader::eat_padding(std::string_view in, std::size_t &pos) {
    if (state_ != State::Padding) return pos;
    std::size_t n = std::min(padding_left_, in.size() - pos);
    padding_left_ -= n;
    pos += n;
    if (padding_left_ == 0) state_ = State::Header;
    return pos;
}

std::string_view decode_get_values_result(std::string_view content, GetValuesResult &out) {
    auto number = [](std::string_view text, std::uint32_t &value) {
        if (text.empty() || text.size() > 10) return false;
        std::uint64_t v = 0;
        for (char c : text) {
            if (c < '0' || c > '9') return false;
            v = v * 10 + static_cast<std::uint64_t>(c - '0');
        }
        if (v > UINT32_MAX) return false;
        value = static_cast<std::uint32_t>(v);
        return true;
    };
    NameValueReader pairs(content);
    NameValue pair;
    PairStatus s;
    while ((s = pairs.next(pair)) == PairStatus::Pair) {
        std::uint32_t value = 0;
        if (pair.name == FCGI_MAX_CONNS) {
            if (!number(pair.value, value)) return "FCGI_MAX_CONNS is not a number";
            out.max_conns = value;
        } else if (pair.name == FCGI_MAX_REQS) {
            if (!number(pair.value, value)) return "FCGI_MAX_REQS is not a number";
            out.max_reqs = value;
        } else if (pair.name == FCGI_MPXS_CONNS) {
            // §4.1: "0" or "1".
            if (pair.value != "0" && pair.value != "1") return "FCGI_MPXS_CONNS is not 0 or 1";
            out.mpxs_conns = pair.value == "1";
        }
    }
    if (s == PairStatus::Error) return pairs.error();
    return {};
}

} // namespace portico::fastcgi
