#include "queue/queued_request.hpp"

namespace sluice::queue {
namespace {

constexpr char kRequestVersion = 1;
constexpr char kDeadVersion = 1;

void put_u64(std::string& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i)
    out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}
void put_str(std::string& out, std::string_view s) {
  put_u64(out, s.size());
  out.append(s);
}

// Reads what put_* wrote; any read past the end makes the whole decode fail.
struct Reader {
  std::string_view in;
  bool ok = true;
  std::uint64_t u64() {
    if (in.size() < 8) {
      ok = false;
      return 0;
    }
    std::uint64_t v = 0;
    for (int i = 7; i >= 0; --i)
      v = (v << 8) | static_cast<unsigned char>(in[static_cast<std::size_t>(i)]);
    in.remove_prefix(8);
    return v;
  }
  std::string str() {
    const std::uint64_t n = u64();
    if (!ok || n > in.size()) {
      ok = false;
      return {};
    }
    std::string s(in.substr(0, n));
    in.remove_prefix(n);
    return s;
  }
};

void put_request(std::string& out, const QueuedRequest& r) {
  put_str(out, r.method);
  put_str(out, r.target);
  put_u64(out, r.headers.size());
  for (const auto& [name, value] : r.headers) {
    put_str(out, name);
    put_str(out, value);
  }
  put_str(out, r.body);
  put_str(out, r.idempotency_key);
  put_str(out, r.order_key);
  put_u64(out, static_cast<std::uint64_t>(r.enqueued_unix_ms));
}

QueuedRequest read_request(Reader& in) {
  QueuedRequest r;
  r.method = in.str();
  r.target = in.str();
  const std::uint64_t n = in.u64();
  for (std::uint64_t i = 0; in.ok && i < n; ++i) {
    std::string name = in.str();
    r.headers.emplace_back(std::move(name), in.str());
  }
  r.body = in.str();
  r.idempotency_key = in.str();
  r.order_key = in.str();
  r.enqueued_unix_ms = static_cast<std::int64_t>(in.u64());
  return r;
}

}  // namespace

std::string encode(const QueuedRequest& r) {
  std::string out(1, kRequestVersion);
  out.reserve(r.body.size() + 256);
  put_request(out, r);
  return out;
}

std::optional<QueuedRequest> decode_request(std::string_view bytes) {
  if (bytes.empty() || bytes[0] != kRequestVersion) return std::nullopt;
  Reader in{bytes.substr(1)};
  QueuedRequest r = read_request(in);
  if (!in.ok) return std::nullopt;
  return r;
}

std::string encode(const DeadLetter& d) {
  std::string out(1, kDeadVersion);
  put_request(out, d.request);
  put_u64(out, d.queued_id);
  put_str(out, d.reason);
  put_u64(out, static_cast<std::uint64_t>(d.status));
  put_str(out, d.answer);
  put_u64(out, static_cast<std::uint64_t>(d.attempts));
  put_u64(out, static_cast<std::uint64_t>(d.dead_unix_ms));
  return out;
}

std::optional<DeadLetter> decode_dead_letter(std::string_view bytes) {
  if (bytes.empty() || bytes[0] != kDeadVersion) return std::nullopt;
  Reader in{bytes.substr(1)};
  DeadLetter d;
  d.request = read_request(in);
  d.queued_id = in.u64();
  d.reason = in.str();
  d.status = static_cast<int>(in.u64());
  d.answer = in.str();
  d.attempts = static_cast<int>(in.u64());
  d.dead_unix_ms = static_cast<std::int64_t>(in.u64());
  if (!in.ok) return std::nullopt;
  return d;
}

}  // namespace sluice::queue
