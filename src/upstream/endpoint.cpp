#include "upstream/endpoint.hpp"

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

namespace sluice::upstream {

bool EndpointHealth::record_failure(SteadyTime now, const OutlierPolicy& policy) {
  if (policy.consecutive_failures <= 0) return false;
  const int streak = consecutive_.fetch_add(1, std::memory_order_relaxed) + 1;
  if (streak < policy.consecutive_failures || ejected(now)) return false;
  consecutive_.store(0, std::memory_order_relaxed);
  // After a quiet period as long as the longest ejection, the backoff starts over.
  const auto last_until = ejected_until_.load(std::memory_order_relaxed);
  const auto quiet = std::chrono::duration_cast<SteadyTime::duration>(policy.max_ejection);
  if (last_until != 0 && now.time_since_epoch().count() - last_until > quiet.count())
    ejections_.store(0, std::memory_order_relaxed);
  const int k = std::min(ejections_.fetch_add(1, std::memory_order_relaxed), 20);
  auto period = policy.base_ejection * (std::int64_t{1} << k);
  period = std::min(period, std::max(policy.max_ejection, policy.base_ejection));
  const auto until = now + std::chrono::duration_cast<SteadyTime::duration>(period);
  ejected_until_.store(until.time_since_epoch().count(), std::memory_order_relaxed);
  return true;
}

std::unique_ptr<Endpoint> resolve_endpoint(const std::string& text, bool tls, std::string& error) {
  std::string host;
  std::uint16_t port = 0;
  if (!split_host_port(text, host, port)) return nullptr;  // already reported
  boost::asio::io_context io(1);
  boost::asio::ip::tcp::resolver resolver(io);
  boost::system::error_code ec;
  auto results = resolver.resolve(host, std::to_string(port), ec);
  if (ec || results.empty()) {
    error = "cannot resolve \"" + host + "\": " + (ec ? ec.message() : "no address");
    return nullptr;
  }
  auto ep = std::make_unique<Endpoint>();
  ep->text = text;
  ep->host_header = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  if (port != (tls ? 443 : 80)) ep->host_header += ":" + std::to_string(port);
  ep->address = results.begin()->endpoint();
  for (const auto& r : results) {
    if (r.endpoint().address().is_v4()) {
      ep->address = r.endpoint();
      break;
    }
  }
  return ep;
}

}  // namespace sluice::upstream
