#include "middleware/common/request_key.hpp"

namespace sluice::middleware {

bool RequestKey::parse_part(std::string_view text, Part& out) {
  if (text == "client_ip")
    out.source = Source::kClientIp;
  else if (text == "route")
    out.source = Source::kRoute;
  else if (text == "user")
    out.source = Source::kUser;
  else if (text == "tier")
    out.source = Source::kTier;
  else if (text.starts_with("header:") && text.size() > 7) {
    out.source = Source::kHeader;
    out.header = std::string(text.substr(7));
  } else {
    return false;
  }
  return true;
}

RequestKey RequestKey::parse(const Settings& s, std::string_view key, std::string_view fallback) {
  RequestKey out;
  auto names = s.strings(key);
  if (names.empty() && !s.has(key)) names.emplace_back(fallback);
  if (names.empty())
    s.error(key, "must name at least one of client_ip, route, user, tier, header:<Name>");
  for (const auto& name : names) {
    Part p;
    if (!parse_part(name, p)) {
      s.error(key,
              "unknown key \"" + name +
                  "\"; expected client_ip, route, user, tier, header:<Name> or a list of them");
      continue;
    }
    out.parts_.push_back(std::move(p));
  }
  return out;
}

std::string RequestKey::of(const Exchange& ex) const {
  std::string out;
  append_to(ex, out);
  return out;
}

void RequestKey::append_to(const Exchange& ex, std::string& out) const {
  for (std::size_t i = 0; i < parts_.size(); ++i) {
    if (i > 0) out += '|';
    std::string_view v;
    switch (parts_[i].source) {
      case Source::kClientIp:
        v = ex.context().client_ip();
        break;
      case Source::kHeader:
        v = ex.request().header(parts_[i].header);
        break;
      case Source::kRoute:
        v = ex.route() != nullptr ? std::string_view(ex.route()->name) : std::string_view();
        break;
      case Source::kUser:
        v = ex.context().user();
        break;
      case Source::kTier:
        v = ex.context().tier();
        break;
    }
    if (v.empty())
      out += '-';
    else
      out.append(v);
  }
}

std::string RequestKey::describe() const {
  std::string out;
  for (const auto& p : parts_) {
    if (!out.empty()) out += '|';
    switch (p.source) {
      case Source::kClientIp:
        out += "client_ip";
        break;
      case Source::kHeader:
        out += "header:" + p.header;
        break;
      case Source::kRoute:
        out += "route";
        break;
      case Source::kUser:
        out += "user";
        break;
      case Source::kTier:
        out += "tier";
        break;
    }
  }
  return out;
}

}  // namespace sluice::middleware
