#include "core/header_name.hpp"

#include <boost/beast/core/string.hpp>

namespace sluice::detail {

void remove_fields(Fields& fields, std::string_view name) {
  for (auto it = fields.begin(); it != fields.end();) {
    const auto n = it->name_string();
    if (n.size() == name.size() && boost::beast::iequals(n, {name.data(), name.size()}))
      it = fields.erase(it);
    else
      ++it;
  }
}

void set_field(Fields& fields, const HeaderName& name, std::string_view value) {
  remove_fields(fields, name.text);
  add_field(fields, name, value);
}

}  // namespace sluice::detail
