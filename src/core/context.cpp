#include "sluice/context.hpp"

#include <random>

namespace sluice {

void Context::begin(SteadyTime steady_now, std::chrono::system_clock::time_point wall_now) {
  request_id_.clear();
  start_steady_ = steady_now;
  start_wall_ = wall_now;
  deadline_.reset();
  user_.clear();
  client_ip_.clear();
  trace_ = TraceSlot{};
  slots_.clear();
}

// An id is echoed into logs and headers, so only a conservative alphabet is accepted: this is
// what stops a client from forging log lines or injecting headers through X-Request-Id.
bool is_valid_request_id(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.' || c == ':';
    if (!ok) return false;
  }
  return true;
}

namespace {
// Per-thread state: a random 64-bit prefix chosen once and a counter. Ids are unique across
// threads (prefixes differ with overwhelming probability) and need no lock or atomic.
struct IdState {
  std::uint64_t prefix;
  std::uint64_t counter = 0;
  IdState() {
    std::random_device rd;
    prefix = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
    counter = (static_cast<std::uint64_t>(rd()) << 16);
  }
};

void append_hex(std::string& out, std::uint64_t v, int digits) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (int i = digits - 1; i >= 0; --i)
    out.push_back(kHex[(v >> (i * 4)) & 0xf]);
}
}  // namespace

std::string generate_request_id() {
  thread_local IdState state;
  std::string id;
  id.reserve(32);
  append_hex(id, state.prefix, 16);
  append_hex(id, ++state.counter, 16);
  return id;
}

}  // namespace sluice
