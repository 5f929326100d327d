// SPDX-License-Identifier: BSD-2-Clause
#include "http/chunked.h"

#include "base/ascii.h"

namespace portico::http {

namespace {
constexpr uint64_t kMaxChunkSize = uint64_t(1) << 62; // as Content-Length: far from overflow
constexpr unsigned kMaxSizeDigits = 16;

// RFC 9110 §5.6.4 qdtext = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text
bool is_qdtext(char c) {
    return c == '\t' || c == ' ' || c == 0x21 || (c >= 0x23 && c <= 0x5b) ||
           (c >= 0x5d && c <= 0x7e) || ascii::is_obs_text(c);
}
} // namespace

ChunkedDecoder::ChunkedDecoder(int64_t max_body) : max_body_(max_body) {}

void ChunkedDecoder::reset() {
    *this = ChunkedDecoder(max_body_);
}

ChunkedDecoder::Step ChunkedDecoder::error_step(size_t consumed, int status, const char *reason) {
    state_ = State::Failed;
    status_ = status;
    reason_ = reason;
    return Step{ParseState::Error, consumed, status, reason};
}

bool ChunkedDecoder::step(char c) {
    auto refuse = [this](int status, const char *reason) {
        status_ = status;
        reason_ = reason;
        return false;
    };
    switch (state_) {
    case State::Size:
        if (ascii::is_hexdig(c)) {
            if (++digits_ > kMaxSizeDigits) {
                return refuse(400, "chunk size has too many digits");
            }
            size_ = size_ * 16 + ascii::hex_value(c);
            return true;
        }
        if (digits_ == 0) {
            return refuse(400, "invalid chunk size");
        }
        if (c == ';') {
            state_ = State::ExtName;
            return true;
        }
        if (c == '\r') {
            state_ = State::SizeLF;
            return true;
        }
        return refuse(400, "invalid chunk size");
    case State::ExtName:
        // first byte of an extension name
        if (!ascii::is_tchar(c)) {
            return refuse(400, "invalid chunk extension");
        }
        state_ = State::Ext;
        return true;
    case State::Ext: // inside an extension name
        if (ascii::is_tchar(c)) {
            return true;
        }
        if (c == '=') {
            state_ = State::ExtValue;
            return true;
        }
        [[fallthrough]];
    case State::ExtToken:
        if (state_ == State::ExtToken && ascii::is_tchar(c)) {
            return true;
        }
        [[fallthrough]];
    case State::ExtQuotedEnd:
        if (c == ';') {
            state_ = State::ExtName;
            return true;
        }
        if (c == '\r') {
            state_ = State::SizeLF;
            return true;
        }
        return refuse(400, "invalid chunk extension");
    case State::ExtValue:
        if (c == '"') {
            state_ = State::ExtQuoted;
            return true;
        }
        if (ascii::is_tchar(c)) {
            state_ = State::ExtToken;
            return true;
        }
        return refuse(400, "invalid chunk extension value");
    case State::ExtQuoted:
        if (c == '"') {
            state_ = State::ExtQuotedEnd;
            return true;
        }
        if (c == '\\') {
            state_ = State::ExtQuotedEscape;
            return true;
        }
        if (is_qdtext(c)) {
            return true;
        }
        return refuse(400, "invalid chunk extension value");
    case State::ExtQuotedEscape:
        // RFC 9110 §5.6.4 quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text )
        if (c == '\t' || c == ' ' || ascii::is_vchar(c) || ascii::is_obs_text(c)) {
            state_ = State::ExtQuoted;
            return true;
        }
        return refuse(400, "invalid chunk extension value");
    case State::SizeLF:
        if (c != '\n') {
            return refuse(400, "bare CR in chunk size line");
        }
        if (size_ > kMaxChunkSize || uint64_t(total_) + size_ > kMaxChunkSize) {
            return refuse(413, "chunked body too large");
        }
        if (max_body_ >= 0 && uint64_t(total_) + size_ > uint64_t(max_body_)) {
            return refuse(413, "chunked body larger than allowed");
        }
        if (size_ == 0) {
            state_ = State::TrailerStart;
        } else {
            remaining_ = size_;
            state_ = State::Data;
        }
        return true;
    case State::DataCR:
        if (c != '\r') {
            return refuse(400, "chunk data not followed by CRLF");
        }
        state_ = State::DataLF;
        return true;
    case State::DataLF:
        if (c != '\n') {
            return refuse(400, "chunk data not followed by CRLF");
        }
        state_ = State::Size;
        size_ = 0;
        digits_ = 0;
        line_len_ = 0;
        return true;
    case State::TrailerStart:
        if (c == '\r') {
            state_ = State::FinalLF;
            return true;
        }
        // RFC 9112 §5.2: obs-fold refused, as in the head
        if (c == ':' || ascii::is_ows(c)) {
            return refuse(400, "invalid trailer field");
        }
        [[fallthrough]];
    case State::TrailerName:
        if (c == ':' && state_ == State::TrailerName) {
            state_ = State::TrailerValue;
            return true;
        }
        if (!ascii::is_tchar(c)) {
            return refuse(400, "invalid trailer field name");
        }
        state_ = State::TrailerName;
        return true;
    case State::TrailerValue:
        if (c == '\r') {
            state_ = State::TrailerLF;
            return true;
        }
        if (!ascii::is_field_value_char(c)) {
            return refuse(400, "control character in trailer field");
        }
        return true;
    case State::TrailerLF:
        if (c != '\n') {
            return refuse(400, "bare CR in trailer section");
        }
        state_ = State::TrailerStart;
        return true;
    case State::FinalLF:
        if (c != '\n') {
            return refuse(400, "bare CR after trailer section");
        }
        state_ = State::Done;
        return true;
    case State::Data:
    case State::Done:
    case State::Failed:
        break;
    }
    return refuse(500, "chunked decoder misuse");
}

ChunkedDecoder::Step ChunkedDecoder::feed(std::string_view in, std::string_view *data_out) {
    *data_out = {};
    if (state_ == State::Done) {
        return Step{ParseState::Done, 0, 0, nullptr};
    }
    if (state_ == State::Failed) {
        return Step{ParseState::Error, 0, status_, reason_};
    }
    size_t i = 0;
    while (i < in.size()) {
        if (state_ == State::Data) {
            size_t n = in.size() - i;
            if (uint64_t(n) > remaining_) {
                n = size_t(remaining_);
            }
            *data_out = in.substr(i, n);
            remaining_ -= n;
            total_ += int64_t(n);
            if (remaining_ == 0) {
                state_ = State::DataCR;
            }
            return Step{ParseState::Again, i + n, 0, nullptr};
        }
        const State before = state_;
        if (before <= State::SizeLF && before != State::SizeLF && ++line_len_ > kMaxSizeLine) {
            return error_step(i, 400, "chunk size line too long");
        }
        if (before >= State::TrailerStart && before <= State::FinalLF &&
            ++trailer_len_ > kMaxTrailers) {
            return error_step(i, 431, "trailer section too large");
        }
        if (!step(in[i])) {
            return error_step(i, status_, reason_);
        }
        ++i;
        if (state_ == State::Done) {
            return Step{ParseState::Done, i, 0, nullptr};
        }
    }
    return Step{ParseState::Again, i, 0, nullptr};
}

void chunked_encode_header(size_t n, char buf[20], size_t *len) {
    static constexpr char kHex[] = "0123456789abcdef";
    char tmp[16];
    size_t k = 0;
    do {
        tmp[k++] = kHex[n & 0xf];
        n >>= 4;
    } while (n != 0);
    size_t out = 0;
    while (k > 0) {
        buf[out++] = tmp[--k];
    }
    buf[out++] = '\r';
    buf[out++] = '\n';
    *len = out;
}

} // namespace portico::http
