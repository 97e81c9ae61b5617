#include "observe/tracing/trace_context.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <random>

#include "core/http_text.hpp"

namespace sluice::observe {
namespace {

constexpr char kHexDigits[] = "0123456789abcdef";

// "000102...ff": two characters per byte value, one copy per byte in to_hex.
constexpr std::array<char, 512> make_hex_pairs() {
  std::array<char, 512> t{};
  for (int b = 0; b < 256; ++b) {
    t[static_cast<std::size_t>(2 * b)] = kHexDigits[b >> 4];
    t[static_cast<std::size_t>(2 * b + 1)] = kHexDigits[b & 0xf];
  }
  return t;
}
constexpr auto kHexPairs = make_hex_pairs();

// -1 for anything but 0-9a-f: the spec allows lower-case hex only.
constexpr std::array<int8_t, 256> make_hex_table() {
  std::array<int8_t, 256> t{};
  for (auto& v : t)
    v = -1;
  for (int c = '0'; c <= '9'; ++c)
    t[c] = static_cast<int8_t>(c - '0');
  for (int c = 'a'; c <= 'f'; ++c)
    t[c] = static_cast<int8_t>(c - 'a' + 10);
  return t;
}
constexpr auto kHexTable = make_hex_table();

bool all_zero(const uint8_t* p, std::size_t n) {
  return std::all_of(p, p + n, [](uint8_t v) { return v == 0; });
}

bool is_lcalpha(char c) {
  return c >= 'a' && c <= 'z';
}
bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_key_char(char c) {
  return is_lcalpha(c) || is_digit(c) || c == '_' || c == '-' || c == '*' || c == '/' || c == '@';
}

// xoshiro256**: fast, 256-bit state, good enough statistically for ids (not a CSPRNG; trace ids
// are not secrets). Seeded per thread so id generation never takes a lock.
class Xoshiro256 {
 public:
  Xoshiro256() {
    std::random_device rd;
    uint64_t seed = (uint64_t{rd()} << 32) ^ rd();
    for (auto& s : s_)
      s = splitmix64(seed);
  }
  uint64_t next() {
    const uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }

 private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  static uint64_t splitmix64(uint64_t& x) {
    uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  uint64_t s_[4];
};

Xoshiro256& rng() {
  thread_local Xoshiro256 r;
  return r;
}

void store_u64(uint8_t* out, uint64_t v) {
  for (int i = 7; i >= 0; --i) {
    out[i] = static_cast<uint8_t>(v);
    v >>= 8;
  }
}

std::size_t member_length(const std::pair<std::string, std::string>& m) {
  return m.first.size() + 1 + m.second.size();
}

}  // namespace

bool TraceId::is_valid() const {
  return !all_zero(b, sizeof b);
}
bool SpanId::is_valid() const {
  return !all_zero(b, sizeof b);
}

void to_hex(const uint8_t* data, std::size_t n, char* out) {
  for (std::size_t i = 0; i < n; ++i)
    std::memcpy(out + 2 * i, kHexPairs.data() + 2 * data[i], 2);
}

std::string to_hex(const TraceId& id) {
  std::string s(32, '0');
  to_hex(id.b, sizeof id.b, s.data());
  return s;
}

std::string to_hex(const SpanId& id) {
  std::string s(16, '0');
  to_hex(id.b, sizeof id.b, s.data());
  return s;
}

bool from_hex(std::string_view hex, uint8_t* out, std::size_t n) {
  if (hex.size() != 2 * n) return false;
  for (std::size_t i = 0; i < n; ++i) {
    const int hi = kHexTable[static_cast<uint8_t>(hex[2 * i])];
    const int lo = kHexTable[static_cast<uint8_t>(hex[2 * i + 1])];
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<uint8_t>((hi << 4) | lo);
  }
  return true;
}

std::optional<TraceParent> parse_traceparent(std::string_view value) {
  // version "-" trace-id "-" parent-id "-" trace-flags = 2+1+32+1+16+1+2.
  constexpr std::size_t kLength = 55;
  const std::string_view s = detail::trim_ows(value);
  if (s.size() < kLength) return std::nullopt;
  TraceParent tp;
  if (!from_hex(s.substr(0, 2), &tp.version, 1) || tp.version == 0xff) return std::nullopt;
  if (s[2] != '-' || s[35] != '-' || s[52] != '-') return std::nullopt;
  if (tp.version == 0 && s.size() != kLength) return std::nullopt;
  // A future version may append fields, but only after another '-'.
  if (s.size() > kLength && s[kLength] != '-') return std::nullopt;
  if (!from_hex(s.substr(3, 32), tp.trace_id.b, 16) || !tp.trace_id.is_valid()) {
    return std::nullopt;
  }
  if (!from_hex(s.substr(36, 16), tp.parent_id.b, 8) || !tp.parent_id.is_valid()) {
    return std::nullopt;
  }
  if (!from_hex(s.substr(53, 2), &tp.flags, 1)) return std::nullopt;
  return tp;
}

uint8_t outgoing_flags(const TraceParent* parent, bool sampled) {
  const uint8_t random = parent ? (parent->flags & kFlagRandom) : kFlagRandom;
  return static_cast<uint8_t>(random | (sampled ? kFlagSampled : 0));
}

void format_traceparent(const TraceParent& tp, char* out) {
  std::memset(out, '-', kTraceparentLength);
  out[0] = '0';
  out[1] = '0';
  to_hex(tp.trace_id.b, 16, out + 3);
  to_hex(tp.parent_id.b, 8, out + 36);
  to_hex(&tp.flags, 1, out + 53);
}

std::string format_traceparent(const TraceParent& tp) {
  std::string s(kTraceparentLength, '-');
  format_traceparent(tp, s.data());
  return s;
}

bool is_valid_tracestate_key(std::string_view key) {
  if (key.empty() || key.size() > kMaxTracestateKeyLength) return false;
  if (!is_lcalpha(key[0]) && !is_digit(key[0])) return false;
  return std::all_of(key.begin() + 1, key.end(), is_key_char);
}

bool is_valid_tracestate_value(std::string_view value) {
  // value = 0*255(chr) nblk-chr; chr = %x20 / nblk-chr;
  // nblk-chr = %x21-2B / %x2D-3C / %x3E-7E (printable ASCII except ',' and '=').
  if (value.empty() || value.size() > kMaxTracestateValueLength || value.back() == ' ') {
    return false;
  }
  return std::all_of(value.begin(), value.end(),
                     [](char c) { return c >= 0x20 && c <= 0x7e && c != ',' && c != '='; });
}

std::optional<TraceState> parse_tracestate(std::string_view value) {
  TraceState ts;
  std::size_t count = 0;
  while (true) {
    const auto comma = value.find(',');
    const std::string_view member = detail::trim_ows(value.substr(0, comma));
    if (!member.empty()) {
      if (++count > TraceState::kMaxMembers) return std::nullopt;
      const auto eq = member.find('=');
      const std::string_view k = member.substr(0, eq);
      const std::string_view v =
          eq == std::string_view::npos ? std::string_view() : member.substr(eq + 1);
      if (k.size() > kMaxTracestateKeyLength || v.size() > kMaxTracestateValueLength) {
        return std::nullopt;
      }
      // eq != npos: "foo" alone is a member without a value, dropped like any malformed one.
      if (eq != std::string_view::npos && is_valid_tracestate_key(k) &&
          is_valid_tracestate_value(v) && !ts.get(k)) {
        ts.members_.emplace_back(std::string(k), std::string(v));
      }
    }
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return ts;
}

std::string format_tracestate(const TraceState& ts, std::size_t max_length) {
  const auto& members = ts.members();
  std::vector<bool> keep(members.size(), true);
  std::size_t total = 0;
  for (const auto& m : members)
    total += member_length(m) + 1;
  if (total > 0) --total;  // n-1 commas
  auto drop = [&](std::size_t i) {
    keep[i] = false;
    total -= member_length(members[i]);
    total = total > 0 ? total - 1 : 0;
  };
  for (std::size_t i = members.size(); i-- > 0 && total > max_length;) {
    if (member_length(members[i]) > TraceState::kLargeMemberLength) drop(i);
  }
  for (std::size_t i = members.size(); i-- > 0 && total > max_length;) {
    if (keep[i]) drop(i);
  }
  std::string out;
  out.reserve(total);
  for (std::size_t i = 0; i < members.size(); ++i) {
    if (!keep[i]) continue;
    if (!out.empty()) out += ',';
    out += members[i].first;
    out += '=';
    out += members[i].second;
  }
  return out;
}

std::optional<std::string_view> TraceState::get(std::string_view key) const {
  for (const auto& [k, v] : members_) {
    if (k == key) return std::string_view(v);
  }
  return std::nullopt;
}

bool TraceState::set(std::string_view key, std::string_view value) {
  if (!is_valid_tracestate_key(key) || !is_valid_tracestate_value(value)) return false;
  erase(key);
  members_.emplace(members_.begin(), std::string(key), std::string(value));
  if (members_.size() > kMaxMembers) members_.pop_back();
  return true;
}

void TraceState::erase(std::string_view key) {
  std::erase_if(members_, [&](const auto& m) { return m.first == key; });
}

TraceId random_trace_id() {
  TraceId id;
  uint64_t hi = 0;
  uint64_t lo = 0;
  while (hi == 0 && lo == 0) {
    hi = rng().next();
    lo = rng().next();
  }
  store_u64(id.b, hi);
  store_u64(id.b + 8, lo);
  return id;
}

SpanId random_span_id() {
  SpanId id;
  uint64_t v = 0;
  while (v == 0)
    v = rng().next();
  store_u64(id.b, v);
  return id;
}

}  // namespace sluice::observe
