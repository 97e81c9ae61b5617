#include "observe/json_escape.hpp"

#include <array>
#include <cstdint>

#include "observe/byte_buffer.hpp"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace sluice::observe {
namespace {

// 1 for bytes that leave the fast path: controls, '"', '\\', DEL and every non-ASCII byte.
constexpr std::array<uint8_t, 256> make_special_table() {
  std::array<uint8_t, 256> t{};
  for (int c = 0; c < 256; ++c)
    t[c] = (c < 0x20 || c == '"' || c == '\\' || c >= 0x7f) ? 1 : 0;
  return t;
}
constexpr auto kSpecial = make_special_table();

constexpr char kHex[] = "0123456789abcdef";

template <class Out>
void append_ascii_escape(Out& out, uint8_t c) {
  switch (c) {
    case '"':
      out += "\\\"";
      return;
    case '\\':
      out += "\\\\";
      return;
    case '\b':
      out += "\\b";
      return;
    case '\f':
      out += "\\f";
      return;
    case '\n':
      out += "\\n";
      return;
    case '\r':
      out += "\\r";
      return;
    case '\t':
      out += "\\t";
      return;
    default:
      break;
  }
  const char esc[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xf]};
  out.append(esc, sizeof esc);
}

bool in_range(uint8_t c, uint8_t lo, uint8_t hi) {
  return c >= lo && c <= hi;
}

// Length of the well-formed UTF-8 sequence at p[0..n) (Unicode Table 3-7), or the negated length
// of its maximal ill-formed subpart (at least 1 byte) when it is not well-formed.
int utf8_sequence(const uint8_t* p, std::size_t n) {
  const uint8_t lead = p[0];
  int need = 0;
  uint8_t lo = 0x80;
  uint8_t hi = 0xbf;
  if (in_range(lead, 0xc2, 0xdf)) {
    need = 1;
  } else if (lead == 0xe0) {
    need = 2;
    lo = 0xa0;  // no overlongs
  } else if (in_range(lead, 0xe1, 0xec) || in_range(lead, 0xee, 0xef)) {
    need = 2;
  } else if (lead == 0xed) {
    need = 2;
    hi = 0x9f;  // no surrogates U+D800..U+DFFF
  } else if (lead == 0xf0) {
    need = 3;
    lo = 0x90;  // no overlongs
  } else if (in_range(lead, 0xf1, 0xf3)) {
    need = 3;
  } else if (lead == 0xf4) {
    need = 3;
    hi = 0x8f;  // nothing above U+10FFFF
  } else {
    return -1;  // 0x80..0xc1 (continuation or overlong lead) and 0xf5..0xff
  }
  int len = 1;
  for (int i = 0; i < need; ++i) {
    if (static_cast<std::size_t>(len) >= n || !in_range(p[len], lo, hi)) return -len;
    ++len;
    lo = 0x80;
    hi = 0xbf;
  }
  return len;
}

// The index of the first byte at or after `i` that needs escaping, or n. Sixteen bytes per step
// where SSE2 is available (every x86-64): request paths and user agents are long runs of plain
// ASCII, and this scan is most of the cost of escaping them.
std::size_t plain_run_end(const uint8_t* p, std::size_t i, std::size_t n) {
#if defined(__SSE2__)
  const __m128i space = _mm_set1_epi8(0x20);
  const __m128i quote = _mm_set1_epi8('"');
  const __m128i backslash = _mm_set1_epi8('\\');
  const __m128i del = _mm_set1_epi8(0x7f);
  for (; i + 16 <= n; i += 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
    // Signed compare: bytes >= 0x80 are negative, so "< 0x20" also catches every non-ASCII byte.
    const __m128i special =
        _mm_or_si128(_mm_or_si128(_mm_cmplt_epi8(v, space), _mm_cmpeq_epi8(v, quote)),
                     _mm_or_si128(_mm_cmpeq_epi8(v, backslash), _mm_cmpeq_epi8(v, del)));
    const int mask = _mm_movemask_epi8(special);
    if (mask != 0) return i + static_cast<std::size_t>(__builtin_ctz(static_cast<unsigned>(mask)));
  }
#endif
  while (i < n && !kSpecial[p[i]])
    ++i;
  return i;
}

template <class Out>
void escape_into(Out& out, std::string_view in) {
  const auto* p = reinterpret_cast<const uint8_t*>(in.data());
  const std::size_t n = in.size();
  std::size_t i = 0;
  while (i < n) {
    const std::size_t run = plain_run_end(p, i, n);
    if (run != i) out.append(in.data() + i, run - i);
    if (run == n) break;
    i = run;
    if (p[i] < 0x80) {
      append_ascii_escape(out, p[i]);
      ++i;
      continue;
    }
    const int len = utf8_sequence(p + i, n - i);
    if (len > 0) {
      out.append(in.data() + i, static_cast<std::size_t>(len));
      i += static_cast<std::size_t>(len);
    } else {
      out += "\\ufffd";
      i += static_cast<std::size_t>(-len);
    }
  }
}

template <class Out>
void quoted_into(Out& out, std::string_view in) {
  out += '"';
  escape_into(out, in);
  out += '"';
}

}  // namespace

void append_json_escaped(std::string& out, std::string_view in) {
  escape_into(out, in);
}
void append_json_escaped(ByteBuffer& out, std::string_view in) {
  escape_into(out, in);
}
void append_json_string(std::string& out, std::string_view in) {
  quoted_into(out, in);
}
void append_json_string(ByteBuffer& out, std::string_view in) {
  quoted_into(out, in);
}

std::string json_escape(std::string_view in) {
  std::string out;
  out.reserve(in.size() + 8);
  append_json_escaped(out, in);
  return out;
}

}  // namespace sluice::observe
