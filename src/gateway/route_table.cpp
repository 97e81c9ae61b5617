#include "gateway/route_table.hpp"

#include <algorithm>
#include <cctype>

namespace sluice::gateway {

namespace {
bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::string_view host_without_port(std::string_view host) {
  if (!host.empty() && host.front() == '[') {  // [v6]:port
    auto end = host.find(']');
    return end == std::string_view::npos ? host : host.substr(0, end + 1);
  }
  auto colon = host.rfind(':');
  return colon == std::string_view::npos ? host : host.substr(0, colon);
}
}  // namespace

bool RouteMatch::matches(const Request& request) const {
  const std::string_view path = request.path();
  if (!exact.empty()) {
    if (path != exact) return false;
  } else if (!path.starts_with(prefix)) {
    return false;
  }
  if (!methods.empty() &&
      std::find(methods.begin(), methods.end(), request.method()) == methods.end()) {
    return false;
  }
  if (!host.empty()) {
    std::string_view h = host_without_port(request.header("Host"));
    if (host.starts_with("*.")) {
      std::string_view suffix = std::string_view(host).substr(1);  // ".example.com"
      if (h.size() <= suffix.size() || !iequals(h.substr(h.size() - suffix.size()), suffix))
        return false;
    } else if (!iequals(h, host)) {
      return false;
    }
  }
  return true;
}

const Route* RouteTable::match(const Request& request) const {
  for (const auto& r : routes)
    if (r->match.matches(request)) return r.get();
  return nullptr;
}

const Route* RouteTable::find(std::string_view name) const {
  for (const auto& r : routes)
    if (r->info.name == name) return r.get();
  return nullptr;
}

}  // namespace sluice::gateway
