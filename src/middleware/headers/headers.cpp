#include "middleware/headers/headers.hpp"

namespace sluice::middleware {

namespace {
// Request and Response share the same header operations; remove first so `set` can re-add.
template <class Message>
void apply(const HeaderEdits& edits, Message& m) {
  for (const auto& name : edits.remove)
    m.remove_header(name);
  for (const auto& [name, value] : edits.set)
    m.set_header(name, value);
  for (const auto& [name, value] : edits.add)
    m.add_header(name, value);
}
}  // namespace

Decision HeadersMiddleware::pre_handle(Exchange& ex) {
  apply(request_, ex.request());
  return Decision::next();
}

void HeadersMiddleware::post_handle(Exchange& ex, std::chrono::nanoseconds) {
  apply(response_, ex.response());
}

}  // namespace sluice::middleware
