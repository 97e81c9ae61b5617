#include "resilience/redis/token_bucket_script.hpp"

#include <algorithm>
#include <charconv>

#include "resilience/redis/sha1.hpp"

namespace sluice::resilience::redis {
namespace {

// Tokens are stored as a float and a timestamp in microseconds of Redis time. A full bucket is
// the same as no bucket, so the key is deleted when full and otherwise expires exactly when it
// would be full again. 1e-9 absorbs float error so 4.9999999 tokens still count as 5.
constexpr std::string_view kSource = R"lua(-- sluice token bucket (Redis time)
-- KEYS[1]: bucket hash {tk = tokens, ts = last update in microseconds of Redis TIME}
-- ARGV: rate (tokens/s), burst, requested, partial ('1': grant up to requested whole tokens)
-- returns {granted (0/1, or the count when partial), remaining, reset_after_ms, retry_after_ms}
if redis.replicate_commands then pcall(redis.replicate_commands) end
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local partial = ARGV[4] == '1'
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local state = redis.call('HMGET', KEYS[1], 'tk', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = burst
  ts = now
elseif now > ts then
  tokens = math.min(burst, tokens + (now - ts) * rate / 1000000)
  ts = now
end
local granted = 0
if partial then
  granted = math.max(0, math.min(want, math.floor(tokens + 1e-9)))
elseif want <= tokens + 1e-9 then
  granted = want
end
tokens = math.max(0, tokens - granted)
local retry = 0
if granted < want then
  if not partial and want > burst then
    retry = -1
  else
    retry = math.ceil((math.min(want, burst) - tokens) * 1000 / rate)
  end
end
local reset = math.ceil((burst - tokens) * 1000 / rate)
if reset <= 0 then
  redis.call('DEL', KEYS[1])
else
  redis.call('HSET', KEYS[1], 'tk', tokens, 'ts', ts)
  redis.call('PEXPIRE', KEYS[1], reset)
end
local answer = granted
if not partial then
  answer = (granted > 0) and 1 or 0
end
return {answer, math.floor(tokens + 1e-9), reset, retry}
)lua";

std::string number(double v) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return ec == std::errc{} ? std::string(buf, end) : std::string("0");
}

}  // namespace

const std::string& TokenBucketScript::source() {
  static const std::string s(kSource);
  return s;
}

const std::string& TokenBucketScript::sha() {
  static const std::string s = sha1_hex(kSource);
  return s;
}

std::string TokenBucketScript::bucket_key(std::string_view prefix, std::string_view key) {
  std::string out;
  out.reserve(prefix.size() + key.size() + 3);
  out.push_back('{');
  out.append(prefix);
  out.push_back(':');
  out.append(key);
  out.push_back('}');
  return out;
}

std::vector<std::string> TokenBucketScript::evalsha_args(const std::string& bucket_key,
                                                         const RateLimit& limit, double requested,
                                                         bool partial) {
  return {"EVALSHA",
          sha(),
          "1",
          bucket_key,
          number(limit.rate_per_second),
          number(limit.burst),
          number(requested),
          partial ? "1" : "0"};
}

std::vector<std::string> TokenBucketScript::load_args() {
  return {"SCRIPT", "LOAD", source()};
}

std::optional<ScriptOutcome> TokenBucketScript::parse(const RedisReply& reply) {
  if (!reply.ok() || reply.type != RedisReply::Type::kArray || reply.elements.size() != 4) {
    return std::nullopt;
  }
  for (const auto& e : reply.elements) {
    if (e.type != RedisReply::Type::kInteger) return std::nullopt;
  }
  ScriptOutcome out{reply.elements[0].integer, reply.elements[1].integer, reply.elements[2].integer,
                    reply.elements[3].integer};
  if (out.granted < 0 || out.remaining < 0 || out.reset_after_ms < 0 || out.retry_after_ms < -1) {
    return std::nullopt;
  }
  return out;
}

RateDecision TokenBucketScript::decision(const ScriptOutcome& out, const RateLimit& limit) {
  RateDecision d;
  d.allowed = out.granted > 0;
  d.limit = limit.burst;
  d.remaining = static_cast<double>(out.remaining);
  d.reset_after = duration_of_ms(out.reset_after_ms);
  if (!d.allowed) {
    d.retry_after = out.retry_after_ms < 0 ? std::chrono::nanoseconds::max()
                                           : duration_of_ms(out.retry_after_ms);
  }
  return d;
}

std::chrono::nanoseconds TokenBucketScript::duration_of_ms(long long ms) {
  return std::chrono::milliseconds(std::clamp(ms, 0LL, kMaxMs));
}

bool TokenBucketScript::is_noscript(const RedisReply& reply) {
  return reply.is_error_reply() && reply.str.rfind("NOSCRIPT", 0) == 0;
}

}  // namespace sluice::resilience::redis
