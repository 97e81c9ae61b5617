#include "middleware/headers/headers.hpp"

namespace sluice::middleware {

namespace {
// Request and Response share the same header operations; remove first so `set` can re-add.
template <class Message>
void apply(const HeaderEdits& edits, Message& message) {
  for (const auto& name : edits.remove)
    detail::remove_fields(message, name);
  for (const auto& [name, value] : edits.set)
    detail::set_field(message, name, value);
  for (const auto& [name, value] : edits.add)
    detail::add_field(message, name, value);
}
}  // namespace

// Most headers middlewares edit one side only: the other hook returns before apply()'s setup.
Decision HeadersMiddleware::pre_handle(Exchange& ex) {
  if (edits_request_) apply(request_, ex.request());
  return Decision::next();
}

void HeadersMiddleware::post_handle(Exchange& ex, std::chrono::nanoseconds) {
  if (edits_response_) apply(response_, ex.response());
}

}  // namespace sluice::middleware
