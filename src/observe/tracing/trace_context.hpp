// W3C Trace Context Level 2 (https://www.w3.org/TR/trace-context-2/, the Candidate
// Recommendation Draft of 2024-03-28): the `traceparent` and `tracestate` headers, parsed and
// formatted to that text, plus random trace and span ids. Section numbers below are Level 2's.
//
//   auto tp = sluice::observe::parse_traceparent(header);    // nullopt => start a new trace
//   TraceParent child{0, tp->trace_id, random_span_id(), outgoing_flags(&*tp, tp->sampled())};
//   std::string out = format_traceparent(child);             // "00-<32 hex>-<16 hex>-01"
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice::observe {

// 16 bytes; all-zero is the spec's "invalid" value and is never produced by random_trace_id().
struct TraceId {
  uint8_t b[16] = {};
  bool is_valid() const;
  friend bool operator==(const TraceId&, const TraceId&) = default;
};

// 8 bytes; all-zero means "no parent" in SpanData and is invalid in a traceparent.
struct SpanId {
  uint8_t b[8] = {};
  bool is_valid() const;
  friend bool operator==(const SpanId&, const SpanId&) = default;
};

// trace-flags (§3.2.2.5). Every other bit is reserved: a vendor sends it as zero (§3.2.2.5.3).
inline constexpr uint8_t kFlagSampled = 0x01;
// §3.2.2.5.2: the right-most 7 bytes of the trace-id are random. Kept as received when a trace
// is continued, set when sluice starts a trace (random_trace_id() draws all 16 bytes).
inline constexpr uint8_t kFlagRandom = 0x02;

struct TraceParent {
  // The version that was received; format_traceparent() always writes 00, the only version this
  // implementation knows, as the spec requires of a vendor that propagates a newer version.
  uint8_t version = 0;
  TraceId trace_id;
  SpanId parent_id;
  uint8_t flags = 0;
  bool sampled() const { return (flags & kFlagSampled) != 0; }
};

// Returns nullopt for any value the spec says to discard (the caller then starts a new trace and
// must also ignore tracestate, §4.1.2). Leading/trailing OWS (space, tab) is accepted and
// trimmed. Version 00 must be exactly 55 characters (§3.2.2); a higher version (not ff) is
// accepted when its first 55 characters parse and, if longer, character 55 is '-' (fields after
// it are ignored, §3.2.4). `value` is one field: a request with several traceparent fields has
// no valid traceparent, the caller checks that (see TracingObserver). Flags are returned as
// received; outgoing_flags() keeps the ones a vendor may send on.
std::optional<TraceParent> parse_traceparent(std::string_view value);

// The trace-flags sluice sends for its span: `sampled` (its decision) plus the random flag, as
// received when continuing `parent` (§3.2.2.5.2), set for a new trace; reserved bits are zero.
uint8_t outgoing_flags(const TraceParent* parent, bool sampled);

// "00-<trace-id>-<parent-id>-<flags>", 55 characters.
std::string format_traceparent(const TraceParent& tp);
inline constexpr std::size_t kTraceparentLength = 55;
// The same into out[0..55), no allocation.
void format_traceparent(const TraceParent& tp, char* out);

// tracestate list-members in header order (left-most = most recently updated vendor).
class TraceState {
 public:
  static constexpr std::size_t kMaxMembers = 32;
  static constexpr std::size_t kMaxPropagatedLength = 512;
  static constexpr std::size_t kLargeMemberLength = 128;

  const std::vector<std::pair<std::string, std::string>>& members() const { return members_; }
  bool empty() const { return members_.empty(); }
  std::optional<std::string_view> get(std::string_view key) const;

  // Adds or updates `key` and moves it to the front, as the spec asks of a vendor that mutates
  // the state; drops the right-most member when that makes more than 32. Returns false (and
  // changes nothing) when key or value do not match the grammar.
  bool set(std::string_view key, std::string_view value);
  void erase(std::string_view key);

 private:
  friend std::optional<TraceState> parse_tracestate(std::string_view value);
  std::vector<std::pair<std::string, std::string>> members_;
};

// The one rule for a received tracestate (§4.1.2 step 3 lets a vendor discard invalid entries
// or the entire header; sluice does this, and never lets it affect traceparent, §3.3):
// - a list-member that breaks the key or value grammar (§3.3.2.2.1, §3.3.2.2.2: bad character,
//   no '=', empty key or value) is dropped, the others are kept;
// - a key that appears again later is dropped, the first (left-most = most recent) one is kept
//   (§3.5: a vendor MAY discard duplicate keys; only one entry per key, §3.3.3);
// - the whole header is discarded (nullopt) when the list has more than 32 list-members (§3.3.2.1
//   `list = list-member 0*31(...)`) or a member is over the size limits (a key or a value
//   longer than 256 characters, §3.3.2.2), as the W3C test suite expects of both
//   (test_tracestate_member_count_limit, test_tracestate_key_length_limit).
// Members are counted before any is dropped; empty and whitespace-only members are allowed and
// not counted (§3.3.2). Multiple tracestate fields must be joined with ',' by the caller first
// (§3.3.2, RFC 9110 §5.3). The total length is not limited here: the 512-character rule is
// about what is propagated (§3.3.3.1), see format_tracestate().
std::optional<TraceState> parse_tracestate(std::string_view value);

// "k1=v1,k2=v2". If the result would exceed max_length characters, members longer than 128
// characters are removed first, then members from the right, as the spec recommends.
std::string format_tracestate(const TraceState& ts,
                              std::size_t max_length = TraceState::kMaxPropagatedLength);

// §3.3.2.2.1: key = ( lcalpha / DIGIT ) 0*255 ( keychar ), keychar = lcalpha / DIGIT / "_" /
// "-" / "*" / "/" / "@". One grammar for every key: Level 1's tenant@system split is gone.
bool is_valid_tracestate_key(std::string_view key);
// §3.3.2.2.2: 1 to 256 printable ASCII characters except ',' and '=', not ending in a space.
bool is_valid_tracestate_value(std::string_view value);
inline constexpr std::size_t kMaxTracestateKeyLength = 256;
inline constexpr std::size_t kMaxTracestateValueLength = 256;

// Random ids from a thread-local xoshiro256** seeded from std::random_device; never all-zero.
TraceId random_trace_id();
SpanId random_span_id();

// Lower-case hex. The `out` overloads write exactly 2*n characters and no terminator.
void to_hex(const uint8_t* data, std::size_t n, char* out);
std::string to_hex(const TraceId& id);
std::string to_hex(const SpanId& id);
// Accepts lower-case hex only (as the spec does); false on any other character or length.
bool from_hex(std::string_view hex, uint8_t* out, std::size_t n);

}  // namespace sluice::observe
