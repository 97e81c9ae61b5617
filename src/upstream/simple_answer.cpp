#include "upstream/simple_answer.hpp"

#include <boost/beast/core/string.hpp>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "core/http_message.hpp"
#include "core/http_text.hpp"
#include "upstream/forwarding.hpp"

namespace sluice::upstream {

namespace http = boost::beast::http;

namespace {

// RFC 9110 tchar: the bytes of a field name.
constexpr std::array<bool, 256> kToken = [] {
  std::array<bool, 256> t{};
  for (int c = '0'; c <= '9'; ++c)
    t[static_cast<std::size_t>(c)] = true;
  for (int c = 'a'; c <= 'z'; ++c)
    t[static_cast<std::size_t>(c)] = true;
  for (int c = 'A'; c <= 'Z'; ++c)
    t[static_cast<std::size_t>(c)] = true;
  for (char c : std::string_view("!#$%&'*+-.^_`|~"))
    t[static_cast<unsigned char>(c)] = true;
  return t;
}();

// The bytes of a field value or reason phrase: visible, obs-text, space and tab (so not CR).
constexpr std::array<bool, 256> kValue = [] {
  std::array<bool, 256> t{};
  for (int c = 0x20; c < 256; ++c)
    t[static_cast<std::size_t>(c)] = c != 0x7f;
  t['\t'] = true;
  return t;
}();

// Past the value bytes from `at`; true when the line then ends with CRLF. Sixteen bytes per step
// where SSE2 is available (every x86-64), as json_escape's plain_run_end does: the values are
// most of an answer's head (a Date alone is 29 bytes), and this scan was the reader's largest
// cost (≈ 5 instructions a byte, callgrind). The head ends with CRLF CRLF, so the bytewise loop
// always stops inside `b`; the blocks stay inside it by their bound.
bool skip_to_line_end(std::string_view b, std::size_t& at) {
#if defined(__SSE2__)
  const __m128i space = _mm_set1_epi8(0x20);
  const __m128i del = _mm_set1_epi8(0x7f);
  const __m128i tab = _mm_set1_epi8('\t');
  for (; at + 16 <= b.size(); at += 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b.data() + at));
    // kValue as vector compares: unsigned v >= 0x20 (max(v, 0x20) == v), not 0x7f, or a tab.
    const __m128i value =
        _mm_andnot_si128(_mm_cmpeq_epi8(v, del), _mm_cmpeq_epi8(_mm_max_epu8(v, space), v));
    const int mask = _mm_movemask_epi8(_mm_or_si128(value, _mm_cmpeq_epi8(v, tab)));
    if (mask != 0xffff) {
      at += static_cast<std::size_t>(__builtin_ctz(~static_cast<unsigned>(mask)));
      return b[at] == '\r' && b[at + 1] == '\n';
    }
  }
#endif
  while (kValue[static_cast<unsigned char>(b[at])])
    ++at;
  return b[at] == '\r' && b[at + 1] == '\n';
}

bool parse_length(std::string_view digits, std::uint64_t& out) {
  if (digits.empty() || digits.size() > 15) return false;  // 15 digits: far past any limit
  std::uint64_t n = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return false;
    n = n * 10 + static_cast<std::uint64_t>(c - '0');
  }
  out = n;
  return true;
}

// Unaligned loads, for comparing four or eight bytes at once.
std::uint64_t load8(const char* p) {
  std::uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
std::uint32_t load4(const char* p) {
  std::uint32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// `name` (token characters) is `lower` (lowercase letters and '-', the same size) in any case:
// (name[i] | 0x20) == lower[i] for every i, eight or four bytes at a time (overlapping at the
// end, so every load stays inside both). Bytewise it was ≈ 7 instructions a character, the
// reader's largest loop on nginx's answer (callgrind).
bool equals_lower(std::string_view name, std::string_view lower) {
  const std::size_t n = name.size();
  const char* a = name.data();
  const char* b = lower.data();
  if (n >= 8) {
    constexpr std::uint64_t kBit = 0x2020202020202020ull;
    for (std::size_t i = 0; i + 8 < n; i += 8)
      if ((load8(a + i) | kBit) != load8(b + i)) return false;
    return (load8(a + n - 8) | kBit) == load8(b + n - 8);
  }
  if (n >= 4) {
    constexpr std::uint32_t kBit = 0x20202020u;
    return (load4(a) | kBit) == load4(b) && (load4(a + n - 4) | kBit) == load4(b + n - 4);
  }
  for (std::size_t i = 0; i < n; ++i)
    if (static_cast<char>(a[i] | 0x20) != b[i]) return false;
  return true;
}

// Connection tokens: `close` and `keep-alive` set keep_alive; any other token names a header
// that must be removed too, which is Beast's path (strip_hop_by_hop) to handle.
bool read_connection(std::string_view value, bool& close, bool& keep) {
  return detail::for_each_list_item(value, [&](std::string_view token) {
    const bool is_close = boost::beast::iequals(token, "close");
    const bool is_keep = boost::beast::iequals(token, "keep-alive");
    close = close || is_close;
    keep = keep || is_keep;
    return is_close || is_keep;
  });
}

// Beast's code for the names upstreams send in nearly every answer, without Beast's hashed
// lookup (string_to_field: ≈ 100 instructions a name, callgrind, five names in nginx's answer);
// any other name goes to Beast. `name` holds token characters only (kToken), so setting the
// 0x20 bit lowers a letter and changes no token character into a letter or '-'.
http::field common_field(std::string_view name) {
  struct Known {
    std::string_view lower;
    http::field code;
  };
  static constexpr Known kKnown[] = {
      {"date", http::field::date},
      {"server", http::field::server},
      {"content-type", http::field::content_type},
      {"content-length", http::field::content_length},
      {"connection", http::field::connection},
      {"transfer-encoding", http::field::transfer_encoding},
      {"keep-alive", http::field::keep_alive},
      {"cache-control", http::field::cache_control},
      {"etag", http::field::etag},
      {"last-modified", http::field::last_modified},
      {"vary", http::field::vary},
      {"via", http::field::via},
  };
  for (const Known& k : kKnown)
    if (k.lower.size() == name.size() && equals_lower(name, k.lower)) return k.code;
  return http::string_to_field(name);
}

// "HTTP/1.1 200 OK\r\n" -> version, status; `at` moves past the line.
bool read_status_line(std::string_view b, std::size_t& at, SimpleAnswer& out) {
  if (b.size() < 15 || b.compare(0, 7, "HTTP/1.") != 0) return false;
  if (b[7] != '0' && b[7] != '1') return false;
  out.version = b[7] == '1' ? 11 : 10;
  if (b[8] != ' ' || b[12] != ' ') return false;
  int status = 0;
  for (std::size_t i = 9; i < 12; ++i) {
    if (b[i] < '0' || b[i] > '9') return false;
    status = status * 10 + (b[i] - '0');
  }
  // 1xx and 101 come before the answer, 204 and 304 have no body whatever their length says.
  if (status < 200 || status == 204 || status == 304) return false;
  out.status = status;
  at = 13;
  if (!skip_to_line_end(b, at)) return false;
  at += 2;
  return true;
}

// Where the head's blank line starts: b.find("\r\n\r\n"), which called memchr once per CR (a
// dozen lines, ≈ 330 instructions, callgrind). With SSE2: the CRs of 16 bytes at a time, each
// checked for the four bytes.
std::size_t find_head_end(std::string_view b) {
#if defined(__SSE2__)
  const __m128i cr = _mm_set1_epi8('\r');
  std::size_t at = 0;
  for (; at + 16 <= b.size(); at += 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b.data() + at));
    for (auto mask = static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, cr))); mask != 0;
         mask &= mask - 1) {
      const std::size_t i = at + static_cast<std::size_t>(__builtin_ctz(mask));
      // b.compare(i, 4, "\r\n\r\n") == 0 without the memcmp call (one per line, ≈ 30 each)
      if (i + 4 <= b.size() && load4(b.data() + i) == load4("\r\n\r\n")) return i;
    }
  }
  // The last bytes (fewer than 16), and a blank line that starts in them.
  const std::size_t rest = b.substr(at).find("\r\n\r\n");
  return rest == std::string_view::npos ? rest : at + rest;
#else
  return b.find("\r\n\r\n");
#endif
}

}  // namespace

bool parse_simple_answer(std::string_view b, std::uint64_t max_body, SimpleAnswer& out) {
  const auto end_of_head = find_head_end(b);
  if (end_of_head == std::string_view::npos || end_of_head + 4 > SimpleAnswer::kMaxHead) {
    return false;
  }
  const std::size_t buffered = b.size();
  out.head_bytes = end_of_head + 4;
  b = b.substr(0, out.head_bytes);
  std::size_t at = 0;
  if (!read_status_line(b, at, out)) return false;

  out.field_count = 0;
  out.via = -1;
  bool has_length = false, close = false, keep = false;
  while (at < end_of_head + 2) {  // one field line per pass; the blank line ends the head
    const std::size_t name_at = at;
    while (kToken[static_cast<unsigned char>(b[at])])
      ++at;
    if (at == name_at || b[at] != ':') return false;  // also obs-fold (a line opening with SP)
    const std::string_view name = b.substr(name_at, at - name_at);
    std::size_t value_at = ++at;
    if (!skip_to_line_end(b, at)) return false;
    const std::string_view value = detail::trim_ows(b.substr(value_at, at - value_at));
    value_at = static_cast<std::size_t>(value.data() - b.data());
    at += 2;

    const auto field = common_field(name);
    switch (field) {
      case http::field::content_length: {
        if (has_length || !parse_length(value, out.body_bytes)) return false;
        has_length = true;
        continue;  // the server frames the body it writes
      }
      case http::field::transfer_encoding:
        return false;
      // Beast's parser reads Proxy-Connection exactly as Connection (a token list; close and
      // keep-alive count), so this reader does too: both paths then keep or close alike.
      case http::field::connection:
      case http::field::proxy_connection:
        if (!read_connection(value, close, keep)) return false;
        continue;
      default:
        break;
    }
    if (is_hop_by_hop(field, name)) continue;
    if (out.field_count == SimpleAnswer::kMaxFields) return false;
    if (field == http::field::via) out.via = static_cast<int>(out.field_count);
    out.fields[out.field_count++] = {
        field, static_cast<std::uint16_t>(name_at), static_cast<std::uint16_t>(name.size()),
        static_cast<std::uint16_t>(value_at), static_cast<std::uint16_t>(value.size())};
  }
  if (!has_length || out.body_bytes > max_body) return false;
  if (buffered - out.head_bytes < out.body_bytes) return false;  // the body is not all here yet
  out.keep_alive = out.version == 11 ? !close : keep && !close;
  std::memcpy(out.head.data(), b.data(), out.head_bytes);
  return true;
}

void apply_simple_answer(const SimpleAnswer& answer, detail::ResponseMessage& message) {
  message.base() = {};
  message.result(static_cast<unsigned>(answer.status));
  const char* head = answer.head.data();
  for (std::size_t i = 0; i < answer.field_count; ++i) {
    const auto& f = answer.fields[i];
    const std::string_view name(head + f.name_at, f.name_size);
    const std::string_view value(head + f.value_at, f.value_size);
    if (static_cast<int>(i) == answer.via) {
      std::string via;
      append_list_value(via, value);
      append_list_value(via, kVia);
      message.insert(f.name, {name.data(), name.size()}, via);
    } else {
      message.insert(f.name, {name.data(), name.size()}, {value.data(), value.size()});
    }
  }
  if (answer.via < 0) message.insert(http::field::via, "Via", {kVia.data(), kVia.size()});
}

}  // namespace sluice::upstream
