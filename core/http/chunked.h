// SPDX-License-Identifier: BSD-2-Clause
// Strict chunked transfer coding (RFC 9112 §7.1): an incremental decoder that never copies body
// bytes, and the few helpers needed to produce chunked output.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "http/parser.h"

namespace portico::http {

// Byte-at-a-time state machine: the outcome never depends on how the input is split.
//
// The caller loops:
//     while (!in.empty()) {
//         std::string_view data;
//         auto s = dec.feed(in, &data);
//         in.remove_prefix(s.consumed);
//         if (!data.empty()) { deliver(data); }      // a view into the `in` just given
//         if (s.state != ParseState::Again) { break; }  // Done: `in` now starts after the body
//     }
// Each call consumes some input and yields at most one contiguous run of body bytes; it stops
// right after that run, after the final CRLF (Done) or at the first bad byte (Error, with the
// status to answer: 400, or 413 when max_body is exceeded). Again with everything consumed
// means "send more". After Done or Error, feed() repeats the answer and consumes nothing.
//
// Strictness (each refusal closes the door on a parser differential):
//  - chunk-size is 1*16HEXDIG (leading zeros count), at most 2^62; no sign, "0x" or whitespace;
//  - chunk-ext must be `;name[=token|quoted-string]`, repeated, with NO whitespace: RFC 9112
//    §7.1.1 allows BWS around ';' and '=', but a lenient size line is where smuggling hides
//    (e.g. "2 ;x" read as size 2 by one hop and as garbage by another). Extensions are ignored;
//  - chunk data must be followed by exactly CRLF; bare LF or bare CR anywhere is refused;
//  - trailer fields are checked like header lines (token name, no whitespace before the colon,
//    no obs-fold, no CTL in values) and discarded.
class ChunkedDecoder {
  public:
    static constexpr size_t kMaxSizeLine = 4096; // chunk-size + extensions, without CRLF
    static constexpr size_t kMaxTrailers = 8192; // the whole trailer section

    // max_body: limit on the decoded body in bytes, -1 for none.
    explicit ChunkedDecoder(int64_t max_body);

    struct Step {
        ParseState state;
        size_t consumed;
        int status;
        const char *reason;
    };
    Step feed(std::string_view in, std::string_view *data_out);

    bool done() const { return state_ == State::Done; }
    int64_t total() const { return total_; } // body bytes decoded so far
    void reset();

  private:
    enum class State {
        Size,
        Ext,
        ExtName,
        ExtValue,
        ExtToken,
        ExtQuoted,
        ExtQuotedEscape,
        ExtQuotedEnd,
        SizeLF,
        Data,
        DataCR,
        DataLF,
        TrailerStart,
        TrailerName,
        TrailerValue,
        TrailerLF,
        FinalLF,
        Done,
        Failed,
    };
    Step error_step(size_t consumed, int status, const char *reason);
    // one framing byte; returns false (and sets the error) when it is refused
    bool step(char c);

    int64_t max_body_;
    State state_ = State::Size;
    uint64_t size_ = 0;   // of the chunk being read
    unsigned digits_ = 0; // hex digits seen
    size_t line_len_ = 0; // bytes of the current size line
    size_t trailer_len_ = 0;
    uint64_t remaining_ = 0; // data bytes left in this chunk
    int64_t total_ = 0;
    int status_ = 0;
    const char *reason_ = nullptr;
};

// Produces "<hex n>\r\n" (RFC 9112 §7.1, lowercase hex, no leading zeros) in buf; *len gets its
// length (at most 18). n == 0 would start the last chunk: use kChunkedLast instead.
void chunked_encode_header(size_t n, char buf[20], size_t *len);

inline constexpr std::string_view kChunkDataEnd = "\r\n";     // after each chunk's data
inline constexpr std::string_view kChunkedLast = "0\r\n\r\n"; // last-chunk, no trailers

} // namespace portico::http
