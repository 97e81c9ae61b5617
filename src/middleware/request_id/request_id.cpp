#include "middleware/request_id/request_id.hpp"

namespace sluice::middleware {

Decision RequestIdMiddleware::pre_handle(Exchange& ex) {
  std::string_view incoming = ex.request().header(header_.text);
  if (trust_incoming_ && is_valid_request_id(incoming)) {
    ex.context().set_request_id(incoming);
  } else {
    ex.context().set_new_request_id();
    detail::set_field(ex.request(), header_, ex.context().request_id());
  }
  return Decision::next();
}

void RequestIdMiddleware::post_handle(Exchange& ex, std::chrono::nanoseconds) {
  detail::set_field(ex.response(), header_, ex.context().request_id());
}

}  // namespace sluice::middleware
