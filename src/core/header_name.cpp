#include "core/header_name.hpp"

#include <boost/beast/core/string.hpp>

namespace sluice::detail {

void remove_beast_fields(Fields& fields, std::string_view name) {
  for (auto it = fields.begin(); it != fields.end();) {
    const auto n = it->name_string();
    if (n.size() == name.size() && boost::beast::iequals(n, {name.data(), name.size()}))
      it = fields.erase(it);
    else
      ++it;
  }
}

bool has_beast_field(const Fields& fields, std::string_view name) {
  for (const auto& f : fields) {
    const auto n = f.name_string();
    if (n.size() == name.size() && boost::beast::iequals(n, {name.data(), name.size()}))
      return true;
  }
  return false;
}

}  // namespace sluice::detail
