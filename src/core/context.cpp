#include "sluice/context.hpp"

#include <cstring>
#include <random>

namespace sluice {

void Context::begin(SteadyTime steady_now, std::chrono::system_clock::time_point wall_now,
                    std::string_view connection_ip) {
  request_id_.clear();
  start_steady_ = steady_now;
  start_wall_ = wall_now;
  deadline_.reset();
  user_.clear();
  tier_.clear();
  client_ip_ = connection_ip;
  peer_ip_ = connection_ip;
  skipped_.clear();
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
void put_hex(char* out, std::uint64_t v);

constexpr std::size_t kIdLength = 32;

// Per-thread state: a random 64-bit prefix chosen once and a counter. Ids are unique across
// threads (prefixes differ with overwhelming probability) and need no lock or atomic. The id is
// kept formatted (16 hex digits of prefix, 16 of counter) and the counter is stepped in its hex
// digits, like an odometer: ids are made per request, and this costs a few instructions where
// formatting 16 digits cost ~100.
struct IdState {
  char id[kIdLength];
  IdState() {
    std::random_device rd;
    put_hex(id, (static_cast<std::uint64_t>(rd()) << 32) ^ rd());
    put_hex(id + 16, static_cast<std::uint64_t>(rd()) << 16);
  }
  void step() {
    for (std::size_t i = kIdLength; i-- > 16;) {
      char& c = id[i];
      if (c == '9') {
        c = 'a';
        return;
      }
      if (c != 'f') {
        ++c;
        return;
      }
      c = '0';  // carry into the next digit
    }
  }
};

void put_hex(char* out, std::uint64_t v) {
  static constexpr char kDigits[] =
      "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
      "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
      "404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f"
      "606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f"
      "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"
      "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf"
      "c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf"
      "e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff";
  for (int i = 7; i >= 0; --i) {
    const auto byte = static_cast<unsigned>(v & 0xff);
    out[2 * i] = kDigits[2 * byte];
    out[2 * i + 1] = kDigits[2 * byte + 1];
    v >>= 8;
  }
}

void write_request_id(char* out) {
  thread_local IdState state;
  state.step();
  std::memcpy(out, state.id, kIdLength);
}
}  // namespace

std::string generate_request_id() {
  char id[kIdLength];
  write_request_id(id);
  return std::string(id, sizeof id);
}

void Context::set_new_request_id() {
  request_id_.resize(kIdLength);
  write_request_id(request_id_.data());
}

}  // namespace sluice
