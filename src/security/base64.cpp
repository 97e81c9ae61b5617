#include "security/base64.hpp"

#include <array>
#include <cstdint>

namespace sluice::security {

namespace {

constexpr std::string_view kStandard =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr std::string_view kUrl =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

constexpr std::array<int8_t, 256> table(std::string_view alphabet) {
  std::array<int8_t, 256> t{};
  for (auto& v : t)
    v = -1;
  for (std::size_t i = 0; i < alphabet.size(); ++i)
    t[static_cast<unsigned char>(alphabet[i])] = static_cast<int8_t>(i);
  return t;
}

constexpr auto kStandardTable = table(kStandard);
constexpr auto kUrlTable = table(kUrl);

std::optional<std::string> decode(std::string_view text, const std::array<int8_t, 256>& t) {
  // A single leftover character carries 6 bits: no whole byte, so no encoder makes it.
  if (text.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(text.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    const int v = t[static_cast<unsigned char>(c)];
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  // Leftover bits must be zero: otherwise two texts would decode to the same bytes.
  if ((acc & ((1u << bits) - 1)) != 0) return std::nullopt;
  return out;
}

std::string encode(std::string_view bytes, std::string_view alphabet, bool pad) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : bytes) {
    acc = (acc << 8) | static_cast<unsigned char>(c);
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(alphabet[(acc >> bits) & 0x3f]);
    }
  }
  if (bits > 0) out.push_back(alphabet[(acc << (6 - bits)) & 0x3f]);
  if (pad)
    while (out.size() % 4 != 0)
      out.push_back('=');
  return out;
}

}  // namespace

std::optional<std::string> decode_base64url(std::string_view text) {
  return decode(text, kUrlTable);
}

std::optional<std::string> decode_base64(std::string_view text) {
  if (text.size() % 4 == 0) {  // padding only ever completes a group of four
    for (int i = 0; i < 2 && !text.empty() && text.back() == '='; ++i)
      text.remove_suffix(1);
  }
  return decode(text, kStandardTable);
}

std::string encode_base64url(std::string_view bytes) {
  return encode(bytes, kUrl, false);
}
std::string encode_base64(std::string_view bytes) {
  return encode(bytes, kStandard, true);
}

}  // namespace sluice::security
