// libFuzzer target: the proxy's fast reader of upstream answers (SimpleAnswer) against Beast's
// parser, the careful path it falls back to. Whenever parse_simple_answer() takes the bytes,
// Beast must read them as the same answer: status, body length, bytes used, keep-alive, and the
// same end-to-end fields, same-named ones in the same order
// (tests/unit/upstream/simple_answer_test.cpp's differential check, with libFuzzer choosing the
// bytes). apply_simple_answer() then builds the client's head.
//
//   make fuzz FUZZ_SECONDS=60            # builds build-fuzz/simple_answer_fuzz and runs it
//   build-fuzz/simple_answer_fuzz build-fuzz/corpus/simple_answer tests/fuzz/corpus/simple_answer
#include <algorithm>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/http_message.hpp"
#include "core/http_text.hpp"
#include "upstream/forwarding.hpp"
#include "upstream/simple_answer.hpp"

namespace {

namespace http = boost::beast::http;
using sluice::upstream::SimpleAnswer;

// A disagreement is a crash libFuzzer records with its input; `what` says which one.
void check(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "simple_answer_fuzz: %s\n", what);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  // The first byte picks the body limit, so answers over it (streamed by the proxy) are tried too.
  const std::uint64_t max_body = size > 0 && (data[0] & 1) ? 16 : 64 * 1024;
  static SimpleAnswer a;  // 2 KiB of head copy: not on the stack per run
  a = SimpleAnswer{};
  if (!sluice::upstream::parse_simple_answer(bytes, max_body, a)) return 0;
  check(a.head_bytes <= bytes.size() && a.body_bytes <= bytes.size() - a.head_bytes,
        "a.head_bytes <= bytes.size() && a.body_bytes <= bytes.size() - a.head_bytes");
  check(a.body_bytes <= max_body && a.field_count <= SimpleAnswer::kMaxFields,
        "a.body_bytes <= max_body && a.field_count <= SimpleAnswer::kMaxFields");

  http::response_parser<http::string_body> p;
  p.eager(true);
  boost::beast::error_code ec;
  const std::size_t used = p.put(boost::asio::buffer(bytes.data(), bytes.size()), ec);
  check(!ec && p.is_done(), "!ec && p.is_done()");
  check(used == a.head_bytes + a.body_bytes, "used == a.head_bytes + a.body_bytes");
  check(static_cast<int>(p.get().result_int()) == a.status,
        "static_cast<int>(p.get().result_int()) == a.status");
  check(p.get().version() == a.version, "p.get().version() == a.version");
  check(p.get().body().size() == a.body_bytes, "p.get().body().size() == a.body_bytes");
  // Beast's keep_alive() as the proxy reads it (keeps_alive: for an HTTP/1.0 answer with both
  // "close" and "keep-alive", close wins, RFC 9112 §9.3; finding 5, fixed).
  check(sluice::upstream::keeps_alive(p.get(), p.get().version(), p.keep_alive()) == a.keep_alive,
        "keeps_alive(Beast) == a.keep_alive");

  auto& beast_fields = p.get().base();
  sluice::upstream::strip_hop_by_hop(beast_fields);
  std::vector<std::pair<std::string_view, std::string_view>> theirs, ours;
  for (const auto& f : beast_fields) {
    if (f.name() == http::field::content_length) continue;
    theirs.emplace_back(std::string_view(f.name_string().data(), f.name_string().size()),
                        std::string_view(f.value().data(), f.value().size()));
  }
  for (std::size_t k = 0; k < a.field_count; ++k) {
    const auto& f = a.fields[k];
    ours.emplace_back(std::string_view(a.head.data() + f.name_at, f.name_size),
                      std::string_view(a.head.data() + f.value_at, f.value_size));
  }
  // Beast inserts a repeated name after its last occurrence ("Server: a, Date, Server: b"
  // iterates as Server, Server, Date), the fast reader keeps arrival order. Both keep the order
  // of same-named fields, the only order RFC 9110 §5.3 gives a meaning to: compare by name.
  auto by_name = [](auto& fields) {
    std::stable_sort(fields.begin(), fields.end(), [](const auto& x, const auto& y) {
      return std::lexicographical_compare(
          x.first.begin(), x.first.end(), y.first.begin(), y.first.end(),
          [](char l, char r) { return std::tolower(l) < std::tolower(r); });
    });
  };
  by_name(ours);
  by_name(theirs);
  if (ours != theirs) {
    for (const auto& [n, v] : ours)
      std::fprintf(stderr, "simple_answer: [%.*s] [%.*s]\n", int(n.size()), n.data(), int(v.size()),
                   v.data());
    for (const auto& [n, v] : theirs)
      std::fprintf(stderr, "beast:         [%.*s] [%.*s]\n", int(n.size()), n.data(), int(v.size()),
                   v.data());
  }
  check(ours == theirs, "ours == theirs (the end-to-end fields)");

  // The client's head: the upstream's Via list (all its Via lines, RFC 9110 §5.3) with sluice's
  // entry last (RFC 9110 §7.6.3). Empty list elements carry nothing (§5.6.1): not compared, but
  // sluice must not make one where it joins its entry.
  std::vector<std::string_view> upstream_via, client_via;
  auto add_list = [](std::vector<std::string_view>& out, std::string_view value) {
    sluice::detail::for_each_list_item(value, [&](std::string_view item) {
      out.push_back(item);
      return true;
    });
  };
  for (const auto& [name, value] : theirs) {
    if (boost::beast::iequals(boost::beast::string_view(name.data(), name.size()), "via")) {
      add_list(upstream_via, value);
    }
  }
  upstream_via.push_back("1.1 sluice");
  sluice::detail::ResponseMessage m;
  sluice::upstream::apply_simple_answer(a, m);
  check(static_cast<int>(m.result_int()) == a.status, "client status");
  std::string_view last_via;
  for (const auto& f : m) {
    if (f.name() != http::field::via) continue;
    last_via = {f.value().data(), f.value().size()};
    add_list(client_via, last_via);
  }
  // The last Via line carries sluice's entry, joined without an empty element before it
  // (finding 3 was `Via: , 1.1 sluice`).
  check(last_via.ends_with(sluice::upstream::kVia), "the last Via ends with 1.1 sluice");
  last_via.remove_suffix(sluice::upstream::kVia.size());
  if (!last_via.empty()) {
    check(last_via.ends_with(", "), "sluice's entry follows ', '");
    last_via.remove_suffix(2);
    const auto last = last_via.find_last_not_of(" \t");
    check(last != std::string_view::npos && last_via[last] != ',', "no empty element before it");
  }
  check(client_via == upstream_via, "client Via = the upstream's Via list, then 1.1 sluice");
  return 0;
}
