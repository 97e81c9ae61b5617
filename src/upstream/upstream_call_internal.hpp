// Small helpers shared by the files of UpstreamCall (upstream_call*.cpp).
#pragma once

#include <algorithm>
#include <boost/optional/optional.hpp>
#include <cstddef>
#include <cstdint>
#include <optional>

#include "sluice/clock.hpp"

namespace sluice::upstream {

// The earlier of two optional deadlines (none: no deadline).
inline std::optional<SteadyTime> earliest(std::optional<SteadyTime> a,
                                          std::optional<SteadyTime> b) {
  if (!a) return b;
  if (!b) return a;
  return std::min(*a, *b);
}

// A fresh answer parser for a try: header and body limits; a HEAD's answer has no body.
template <class Parser>
void prepare_parser(std::optional<Parser>& parser, std::uint64_t max_body, bool head) {
  parser.emplace();
  parser->header_limit(64 * 1024);
  parser->body_limit(max_body > 0 ? boost::optional<std::uint64_t>(max_body) : boost::none);
  if (head) parser->skip(true);
}

inline constexpr std::size_t kPieceBytes = 64 * 1024;  // a streamed answer's pieces, at most

}  // namespace sluice::upstream
