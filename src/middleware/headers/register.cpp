#include "middleware/headers/headers.hpp"
#include "sluice/registry.hpp"

namespace sluice::middleware {
namespace {
HeaderEdits read_edits(const Settings& s) {
  HeaderEdits e;
  e.set = s.string_map("set");
  e.add = s.string_map("add");
  e.remove = s.strings("remove");
  return e;
}

const MiddlewareRegistrar registrar("headers", [](const MiddlewareSpec& spec, Settings& s) {
  auto request = read_edits(s.child("request"));
  auto response = read_edits(s.child("response"));
  if (request.empty() && response.empty()) s.error("", "headers: nothing to change");
  return std::make_shared<HeadersMiddleware>(spec.name, std::move(request), std::move(response));
});
}  // namespace
}  // namespace sluice::middleware
