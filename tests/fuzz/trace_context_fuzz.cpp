// libFuzzer target: traceparent and tracestate parsing (observe/trace_context), the values every
// client controls. Beyond "no crash, no sanitizer report" it checks what callers rely on:
// a parsed traceparent re-formats and re-parses to the same ids and flags; a parsed tracestate
// holds only members of the Level 2 grammar, no key twice, at most 32, and formatting it gives a
// header that parses back to the same members (or a prefix of them, when cut to 512 characters).
//
//   make fuzz FUZZ_SECONDS=60            # builds build-fuzz/trace_context_fuzz and runs it
//   build-fuzz/trace_context_fuzz build-fuzz/corpus/trace_context tests/fuzz/corpus/trace_context
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <set>
#include <string>
#include <string_view>

#include "observe/tracing/trace_context.hpp"

namespace {

using namespace sluice::observe;

// A broken invariant is a crash libFuzzer records with its input.
void check(bool ok) {
  if (!ok) std::abort();
}

void check_traceparent(std::string_view value) {
  const auto tp = parse_traceparent(value);
  if (!tp) return;
  check(tp->version != 0xff && tp->trace_id.is_valid() && tp->parent_id.is_valid());
  const std::string out = format_traceparent(*tp);
  check(out.size() == kTraceparentLength && out.starts_with("00-"));
  const auto again = parse_traceparent(out);
  check(again && again->version == 0 && again->trace_id == tp->trace_id &&
        again->parent_id == tp->parent_id && again->flags == tp->flags);
  const uint8_t sent = outgoing_flags(&*tp, tp->sampled());
  check((sent & ~(kFlagSampled | kFlagRandom)) == 0);
  check((sent & kFlagRandom) == (tp->flags & kFlagRandom));
}

void check_tracestate(std::string_view value) {
  const auto ts = parse_tracestate(value);
  if (!ts) return;
  const auto& members = ts->members();
  check(members.size() <= TraceState::kMaxMembers);
  std::set<std::string> keys;
  for (const auto& [k, v] : members) {
    check(is_valid_tracestate_key(k) && is_valid_tracestate_value(v));
    check(keys.insert(k).second);
  }
  const std::string full = format_tracestate(*ts, std::size_t(-1));
  const auto reparsed = parse_tracestate(full);
  check(reparsed && reparsed->members() == members);
  // What is propagated: at most 512 characters of whole members, in the same order.
  const std::string cut = format_tracestate(*ts);
  check(cut.size() <= TraceState::kMaxPropagatedLength);
  const auto kept = parse_tracestate(cut);
  check(kept.has_value());
  std::size_t at = 0;
  for (const auto& m : kept->members()) {
    while (at < members.size() && members[at] != m)
      ++at;
    check(at < members.size());
    ++at;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  // The whole input as either header, and split at the first newline into one of each, so the
  // corpus can hold a traceparent and a tracestate together.
  check_traceparent(input);
  check_tracestate(input);
  if (const auto nl = input.find('\n'); nl != std::string_view::npos) {
    check_traceparent(input.substr(0, nl));
    check_tracestate(input.substr(nl + 1));
  }
  return 0;
}
