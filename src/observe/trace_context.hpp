// W3C Trace Context (https://www.w3.org/TR/trace-context/): the `traceparent` and `tracestate`
// headers, parsed and formatted exactly to the spec, plus random trace and span ids.
//
//   auto tp = sluice::observe::parse_traceparent(header);    // nullopt => start a new trace
//   TraceParent child{0, tp->trace_id, random_span_id(), tp->flags};
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

inline constexpr uint8_t kFlagSampled = 0x01;

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
// must also ignore tracestate). Leading/trailing OWS (space, tab) is accepted and trimmed.
// Version 00 must be exactly 55 characters; a higher version (not ff) is accepted when its first
// 55 characters parse and, if longer, character 55 is '-' (fields after it are ignored).
std::optional<TraceParent> parse_traceparent(std::string_view value);

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

// Returns nullopt when the whole header must be discarded: a member breaking the key/value
// grammar, a duplicated key, or more than 32 list-members. Empty and whitespace-only members are
// skipped. Multiple tracestate header lines must be joined with ',' by the caller first.
// The length is not limited here: the 512-character rule is about what is propagated, see
// format_tracestate().
std::optional<TraceState> parse_tracestate(std::string_view value);

// "k1=v1,k2=v2". If the result would exceed max_length characters, members longer than 128
// characters are removed first, then members from the right, as the spec recommends.
std::string format_tracestate(const TraceState& ts,
                              std::size_t max_length = TraceState::kMaxPropagatedLength);

bool is_valid_tracestate_key(std::string_view key);
bool is_valid_tracestate_value(std::string_view value);

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
