// libFuzzer target: the PROXY protocol v1/v2 header parser (server/proxy_protocol.hpp), the
// first bytes of every connection on a `proxy_protocol: true` listener. The session parses the
// bytes read so far again after each read, so besides "no crash" the answers must be
// consistent as bytes arrive: a prefix of a header is need_more; once done or invalid, more
// bytes do not change the answer; a done header parses alone to the same header.
//
//   make fuzz-build && build-fuzz/proxy_protocol_fuzz tests/fuzz/corpus/proxy_protocol
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "server/proxy_protocol.hpp"

namespace {

using sluice::server::parse_proxy_header;
using sluice::server::ProxyHeader;
using sluice::server::ProxyHeaderStatus;

void check(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "proxy_protocol_fuzz: %s\n", what);
  std::abort();
}

bool same(const ProxyHeader& a, const ProxyHeader& b) {
  return a.status == b.status && a.used == b.used && a.source == b.source &&
         a.source_port == b.source_port;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  const ProxyHeader whole = parse_proxy_header(bytes);
  switch (whole.status) {
    case ProxyHeaderStatus::done:
      check(whole.used > 0 && whole.used <= size, "done: 0 < used <= size");
      check(whole.used <= 16 + sluice::server::kMaxProxyV2Payload, "done: used within the limit");
      check(same(parse_proxy_header(bytes.substr(0, whole.used)), whole),
            "done: the header alone parses the same");
      break;
    case ProxyHeaderStatus::need_more:
      check(whole.used == 0 && !whole.source, "need_more: nothing taken");
      check(size < 16 + sluice::server::kMaxProxyV2Payload, "need_more: below the longest header");
      break;
    case ProxyHeaderStatus::invalid:
      check(*whole.error != '\0', "invalid: says why");
      break;
  }
  // As the session sees it: the first answer that is not need_more, over growing prefixes, is
  // the whole input's answer (a cheap sample of prefix lengths, all of them for short inputs).
  const std::size_t step = size < 256 ? 1 : size / 64;
  for (std::size_t n = 0; n <= size; n += step) {
    const ProxyHeader part = parse_proxy_header(bytes.substr(0, n));
    if (part.status == ProxyHeaderStatus::need_more) continue;
    check(part.status == whole.status, "a prefix's final answer is the whole input's");
    if (part.status == ProxyHeaderStatus::done) check(same(part, whole), "same header");
    break;
  }
  // One more byte after an answered input changes nothing.
  if (whole.status != ProxyHeaderStatus::need_more) {
    std::string more(bytes);
    more.push_back('\n');
    const ProxyHeader extended = parse_proxy_header(more);
    check(extended.status == whole.status, "more bytes keep the status");
    if (whole.status == ProxyHeaderStatus::done) check(same(extended, whole), "and the header");
  }
  return 0;
}
