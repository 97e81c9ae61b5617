// The connection keys of a `redis:` settings map, shared by every Redis user (the rate limiter's
// `backend: redis`, the queue's `backend: redis`), so that both are configured the same way:
//   redis: { address: "127.0.0.1:6379", username: "", password: "", password_env: REDIS_PW,
//            db: 0, connect_timeout_ms: 200, command_timeout_ms: 50,
//            reconnect_backoff_min_ms: 50, reconnect_backoff_max_ms: 2000 }
//
//   RedisConnectionOptions c;  c.command_timeout = 500ms;  // the caller's defaults
//   read_redis_connection(settings.child("redis"), c);     // errors through the settings
#pragma once

#include "resilience/redis/redis_connection.hpp"
#include "sluice/settings.hpp"

namespace sluice::resilience::redis {

// Reads the keys above into `c` (keeping its values as defaults); errors go through `s`.
void read_redis_connection(const Settings& s, RedisConnectionOptions& c);

}  // namespace sluice::resilience::redis
