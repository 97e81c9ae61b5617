#include "resilience/redis/redis_settings.hpp"

#include <cstdlib>

namespace sluice::resilience::redis {

void read_redis_connection(const Settings& s, RedisConnectionOptions& c) {
  const std::string address = s.string("address", c.host + ":" + std::to_string(c.port));
  const auto colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    s.error("address", "must be host:port (e.g. 127.0.0.1:6379), got \"" + address + "\"");
  } else {
    c.host = address.substr(0, colon);
    c.port = std::atoi(address.c_str() + colon + 1);
    if (c.port <= 0 || c.port > 65535) s.error("address", "the port must be in 1..65535");
  }
  c.username = s.string("username");
  c.password = s.string("password");
  if (auto env = s.optional_string("password_env")) {
    const char* value = std::getenv(env->c_str());
    if (value == nullptr)
      s.error("password_env", "environment variable " + *env + " is not set");
    else
      c.password = value;
  }
  c.db = static_cast<int>(s.integer("db", 0, 0, 1 << 20));
  c.connect_timeout = s.millis("connect_timeout_ms", c.connect_timeout);
  c.command_timeout = s.millis("command_timeout_ms", c.command_timeout);
  c.reconnect_min = s.millis("reconnect_backoff_min_ms", c.reconnect_min);
  c.reconnect_max = s.millis("reconnect_backoff_max_ms", c.reconnect_max);
}

}  // namespace sluice::resilience::redis
