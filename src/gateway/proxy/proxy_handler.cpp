#include "gateway/proxy/proxy_handler.hpp"

#include "core/recycling_allocator.hpp"
#include "server/worker_pool.hpp"

namespace sluice::gateway::proxy {

Decision ProxyHandler::handle(Exchange& ex) {
  boost::asio::io_context* io = server::current_io_context();
  if (io == nullptr) {
    // Off the worker threads (an adapter without Asio): nothing to run the upstream I/O on.
    return ex.answer_error(502, "upstream_unreachable", "the proxy needs a sluice worker thread");
  }
  // Made and freed per request: its block comes back from the thread's spares.
  auto call = std::allocate_shared<upstream::UpstreamCall>(
      detail::RecyclingAllocator<upstream::UpstreamCall>(), route_, ex, ex.defer(), *io);
  call->start();
  return Decision::wait();
}

}  // namespace sluice::gateway::proxy
