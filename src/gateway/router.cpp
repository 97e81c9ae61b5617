#include "gateway/router.hpp"

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

void Router::dispatch(Exchange& ex, server::DispatchState* state, std::function<void()> done) {
  auto& st = *static_cast<RouterState*>(state);
  st.done = std::move(done);
  st.config = config_.acquire();
  const Route* route = st.config->routes->match(ex.request());
  if (route == nullptr) {
    ex.context().set_request_id(generate_request_id());
    ex.answer_error(404, "no_route", "no route matches this request");
    st.finish();
    return;
  }
  ex.set_route(&route->info);
  st.chain = route->chain->acquire();
  ex.run(*st.chain, *route->handler, [&st] { st.finish(); });
}

}  // namespace sluice::gateway
