#include "gateway/proxy/proxy_handler.hpp"

#include "core/recycling_allocator.hpp"
#include "observe/metrics/sharded.hpp"
#include "server/worker_pool.hpp"

namespace sluice::gateway::proxy {

ProxyHandler::ProxyHandler(std::shared_ptr<const upstream::ProxyRoute> route)
    : route_(std::move(route)) {
  const std::size_t shards = observe::shard_count();  // a power of two
  owners_.reserve(shards);
  for (std::size_t i = 0; i < shards; ++i)
    owners_.push_back(std::make_shared<Owner>(Owner{route_}));
}

std::shared_ptr<const upstream::ProxyRoute> ProxyHandler::for_this_worker() const {
  const auto& owner = owners_[observe::shard_index() & (owners_.size() - 1)];
  // Shares the owner's count (aliasing), which keeps the route alive as long as the call.
  return {owner, owner->route.get()};
}

Decision ProxyHandler::handle(Exchange& ex) {
  boost::asio::io_context* io = server::current_io_context();
  if (io == nullptr) {
    // Off the worker threads (an adapter without Asio): nothing to run the upstream I/O on.
    return ex.answer_error(502, "upstream_unreachable", "the proxy needs a sluice worker thread");
  }
  // The call's start is this handler's: the chain's reading when it times hooks on the
  // cluster's clock (taken before defer(), after which the exchange no longer shares it).
  const SteadyTime started = ex.hook_time(route_->cluster->clock());
  // Made and freed per request: its block comes back from the thread's spares.
  auto call = std::allocate_shared<upstream::UpstreamCall>(
      detail::RecyclingAllocator<upstream::UpstreamCall>(), for_this_worker(), ex, ex.defer(), *io);
  call->start(started);
  return Decision::wait();
}

}  // namespace sluice::gateway::proxy
