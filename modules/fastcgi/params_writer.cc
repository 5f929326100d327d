#include "params_writer.h"

#include "record.h"

#include <cstring>
#include <memory>

namespace portico::fastcgi {

namespace {

// §3.4: the 4-byte form is used from 128 on, big-endian, high bit set.
std::size_t encode_length(std::size_t length, char *bytes) {
    if (length < 128) {
        bytes[0] = static_cast<char>(length);
        return 1;
    }
    bytes[0] = static_cast<char>(0x80 | ((length >> 24) & 0x7f));
    bytes[1] = static_cast<char>((length >> 16) & 0xff);
    bytes[2] = static_cast<char>((length >> 8) & 0xff);
    bytes[3] = static_cast<char>(length & 0xff);
    return 4;
}

std::string_view check_lengths(std::string_view name, std::string_view value) {
    if (name.size() > kMaxNameValueLength) return "FastCGI parameter name longer than 2^31-1 bytes";
    if (value.size() > kMaxNameValueLength)
        return "FastCGI parameter value longer than 2^31-1 bytes";
    return {};
}

} // namespace

std::string_view append_name_value(std::string &out, std::string_view name,
                                   std::string_view value) {
    if (auto reason = check_lengths(name, value); !reason.empty()) return reason;
    char bytes[4];
    out.append(bytes, encode_length(name.size(), bytes));
    out.append(bytes, encode_length(value.size(), bytes));
    out.append(name);
    out.append(value);
    return {};
}

namespace {
char *record_buffer() {
    thread_local std::unique_ptr<char[]> buffer(new char[kMaxRecordContent]);
    return buffer.get();
}
} // namespace

ParamsWriter::ParamsWriter(std::string &out, std::uint16_t request_id)
    : out_(out), request_id_(request_id), record_(record_buffer()) {}

void ParamsWriter::close_record() {
    if (used_ == 0) return;
    std::uint8_t padding = padding_for(used_);
    RecordHeader header =
        make_header(RecordType::Params, request_id_, static_cast<std::uint16_t>(used_), padding);
    // one resize (the padding comes zeroed with it), then plain copies
    std::size_t at = out_.size();
    out_.resize(at + header.size() + used_ + padding);
    char *p = out_.data() + at;
    std::memcpy(p, header.data(), header.size());
    std::memcpy(p + header.size(), record_, used_);
    used_ = 0;
}

// Bytes of a pair that may run past the record: each full record is closed and
// the rest continues in the next one.
void ParamsWriter::write_bytes(std::string_view bytes) {
    while (!bytes.empty()) {
        std::size_t room = kMaxRecordContent - used_;
        std::size_t n = bytes.size() < room ? bytes.size() : room;
        std::memcpy(record_ + used_, bytes.data(), n); // bytes is not empty here
        used_ += n;
        bytes.remove_prefix(n);
        if (used_ == kMaxRecordContent) close_record();
    }
}

void ParamsWriter::write_length(std::size_t length) {
    char bytes[4];
    write_bytes({bytes, encode_length(length, bytes)});
}

void ParamsWriter::put_any(std::string_view name, std::string_view value) {
    if (failed()) return;
    if (finished_) {
        error_ = "FastCGI parameter after the end of the PARAMS stream";
        return;
    }
    if (auto reason = check_lengths(name, value); !reason.empty()) {
        error_ = reason;
        return;
    }
    std::size_t size = name_value_size(name, value);
    if (size <= kMaxRecordContent && used_ + size > kMaxRecordContent) close_record();
    if (size < kMaxRecordContent) {
        // the common case: the pair fits the open (or a new) record whole
        char *p = record_ + used_;
        p += encode_length(name.size(), p);
        p += encode_length(value.size(), p);
        if (!name.empty()) std::memcpy(p, name.data(), name.size());
        if (!value.empty()) std::memcpy(p + name.size(), value.data(), value.size());
        used_ += size;
        if (used_ == kMaxRecordContent) close_record();
        ++pairs_;
        return;
    }
    write_length(name.size());
    write_length(value.size());
    write_bytes(name);
    write_bytes(value);
    ++pairs_;
}

void ParamsWriter::finish() {
    if (finished_) return;
    close_record();
    append_end_of_stream(out_, RecordType::Params, request_id_);
    finished_ = true;
}

bool NameValueReader::read_length(std::size_t &length) {
    if (pos_ >= in_.size()) return false;
    auto byte = [&](std::size_t i) { return static_cast<unsigned char>(in_[pos_ + i]); };
    if ((byte(0) & 0x80) == 0) {
        length = byte(0);
        pos_ += 1;
        return true;
    }
    if (in_.size() - pos_ < 4) return false;
    length = (std::size_t{byte(0) & 0x7fu} << 24) | (std::size_t{byte(1)} << 16) |
             (std::size_t{byte(2)} << 8) | std::size_t{byte(3)};
    pos_ += 4;
    return true;
}

PairStatus NameValueReader::next(NameValue &out) {
    if (!error_.empty()) return PairStatus::Error;
    if (pos_ == in_.size()) return PairStatus::End;
    std::size_t name_length = 0;
    std::size_t value_length = 0;
    if (!read_length(name_length) || !read_length(value_length)) {
        error_ = "truncated FastCGI name-value length";
        return PairStatus::Error;
    }
    // Compared one at a time: the sum of two 31-bit lengths cannot overflow
    // size_t, but the remaining input is the only honest bound.
    std::size_t left = in_.size() - pos_;
    if (name_length > left || value_length > left - name_length) {
        error_ = "FastCGI name-value pair runs past its input";
        return PairStatus::Error;
    }
    out.name = in_.substr(pos_, name_length);
    out.value = in_.substr(pos_ + name_length, value_length);
    pos_ += name_length + value_length;
    return PairStatus::Pair;
}

} // namespace portico::fastcgi
