#include "middleware/headers/headers.hpp"

namespace sluice::middleware {

namespace {
// Request and Response share the same header operations; remove first so `set` can re-add.
void apply(const HeaderEdits& edits, detail::Fields& fields) {
  for (const auto& name : edits.remove)
    detail::remove_fields(fields, name);
  for (const auto& [name, value] : edits.set)
    detail::set_field(fields, name, value);
  for (const auto& [name, value] : edits.add)
    detail::add_field(fields, name, value);
}
}  // namespace

Decision HeadersMiddleware::pre_handle(Exchange& ex) {
  apply(request_, ex.request().native());
  return Decision::next();
}

void HeadersMiddleware::post_handle(Exchange& ex, std::chrono::nanoseconds) {
  apply(response_, ex.response().native());
}

}  // namespace sluice::middleware
