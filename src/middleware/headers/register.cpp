#include <strings.h>

#include "middleware/headers/headers.hpp"
#include "sluice/registry.hpp"

namespace sluice::middleware {
namespace {
HeaderEdits read_edits(const Settings& s) {
  HeaderEdits e;
  for (auto& [name, value] : s.string_map("set"))
    e.set.emplace_back(detail::HeaderName(std::move(name)), std::move(value));
  for (auto& [name, value] : s.string_map("add"))
    e.add.emplace_back(detail::HeaderName(std::move(name)), std::move(value));
  e.remove = s.strings("remove");
  // `set` replaces every value of its header anyway: also removing it first changes nothing.
  for (const auto& name : e.remove) {
    for (const auto& [set_name, value] : e.set) {
      if (strcasecmp(name.c_str(), set_name.text.c_str()) == 0)
        s.error("remove", "\"" + name + "\" has no effect: set replaces that header anyway");
    }
  }
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
