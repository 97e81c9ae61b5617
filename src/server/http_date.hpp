// http_date_now — the IMF-fixdate for the Date header ("Sun, 06 Nov 1994 08:49:37 GMT"),
// formatted at most once per second per thread.
#pragma once

#include <string_view>

namespace sluice::server {

std::string_view http_date_now();

}  // namespace sluice::server
