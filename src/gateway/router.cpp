#include "gateway/router.hpp"

#include <boost/beast/core/string.hpp>
#include <boost/container/small_vector.hpp>

#include "core/http_message.hpp"
#include "sluice/exchange_driver.hpp"

namespace sluice::gateway {

namespace {
struct RouterState final : server::DispatchState {
  ConfigCell::Lease config;
  Chain::Lease chain;
  std::function<void()> done;

  void finish() {
    auto d = std::move(done);
    done = nullptr;
    d();  // starts the write; the response no longer needs the snapshots
    chain.release();
    config.release();
  }
};
}  // namespace

std::unique_ptr<server::DispatchState> Router::make_state() {
  return std::make_unique<RouterState>();
}

namespace {
// Behind trusted proxies the client is named by X-Forwarded-For (gateway/real_ip/).
void resolve_client_address(const net::RealIpPolicy& policy, Exchange& ex) {
  boost::container::small_vector<std::string_view, 2> values;
  for (const auto& f : ex.request().native().base()) {
    if (f.name() == boost::beast::http::field::unknown &&
        boost::beast::iequals(f.name_string(), policy.header())) {
      values.emplace_back(f.value().data(), f.value().size());
    }
  }
  if (values.empty()) return;
  ex.context().set_client_ip(policy.client_address(ex.context().peer_ip(), values));
}
}  // namespace

void Router::dispatch(Exchange& ex, server::DispatchState* state, std::function<void()> done) {
  auto& st = *static_cast<RouterState*>(state);
  st.done = std::move(done);
  st.config = config_.acquire();
  if (const auto& real_ip = st.config->settings.real_ip) resolve_client_address(*real_ip, ex);
  const Route* route = st.config->routes->match(ex.request());
  if (route == nullptr) {
    ex.context().set_new_request_id();
    ex.answer_error(404, "no_route", "no route matches this request");
    st.finish();
    return;
  }
  ExchangeDriver drive(ex);
  drive.set_route(&route->info);
  st.chain = route->chain->acquire();
  drive.run(*st.chain, *route->handler, [&st] { st.finish(); });
}

}  // namespace sluice::gateway
