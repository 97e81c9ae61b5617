// Admin API of the store-and-forward queues (behind the admin token, as every admin endpoint):
//   GET    /queues                            every queue: state, depth, oldest age, bytes, ...
//   POST   /queues/<name>/pause               stop replaying (writes are still stored)
//   POST   /queues/<name>/resume              replay again
//   POST   /queues/<name>/drain               replay now: ends a backoff at once
//   GET    /queues/<name>/dead                the dead letters, with the answer that killed them
//   POST   /queues/<name>/dead/<id>/requeue   back in the queue (a new id, the same key)
//   DELETE /queues/<name>/dead/<id>           dropped for good
#include <charconv>

#include "middleware/fallback/fallback_queue.hpp"
#include "sluice/extension/admin_endpoint.hpp"
#include "sluice/extension/json_answer.hpp"

namespace sluice::middleware {
namespace {

using nlohmann::json;

json stats_json(const queue::QueueStats& s) {
  return {{"name", s.name},
          {"dir", s.dir},
          {"backend", s.backend},
          {"backend_up", s.backend_up},
          {"state", s.state},
          {"depth", s.depth},
          {"in_flight", s.in_flight},
          {"bytes", s.bytes},
          {"oldest_age_seconds", s.oldest_age_seconds},
          {"backoff_seconds", s.backoff_seconds},
          {"dead_letters", s.dead_letters},
          {"enqueued", s.enqueued},
          {"delivered", s.delivered},
          {"retried", s.retried},
          {"dead", s.dead},
          {"last_drain_seconds",
           s.last_drain_seconds < 0 ? json(nullptr) : json(s.last_drain_seconds)}};
}

json dead_json(const queue::DeadLetterView& v) {
  const auto& d = v.letter;
  return {{"id", v.id},
          {"queued_id", d.queued_id},
          {"method", d.request.method},
          {"target", d.request.target},
          {"idempotency_key", d.request.idempotency_key},
          {"reason", d.reason},
          {"status", d.status},
          {"answer", d.answer},
          {"attempts", d.attempts},
          {"body_bytes", d.request.body.size()},
          {"enqueued_unix_ms", d.request.enqueued_unix_ms},
          {"dead_unix_ms", d.dead_unix_ms}};
}

std::vector<std::string_view> split(std::string_view path) {
  std::vector<std::string_view> parts;
  while (!path.empty()) {
    const auto slash = path.find('/');
    if (slash != 0) parts.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return parts;
}

// GET /queues: counters and states kept in memory (a Redis-backed queue's depth is the last
// one its own thread read), so it answers on the admin thread, without the hand-off to the
// main thread the actions below need. Monitoring polls it.
bool handle_list(Exchange& ex, extension::AdminView& gw) {
  if (ex.request().path() != "/queues" && ex.request().path() != "/queues/") return false;
  const std::string_view method = ex.request().method();
  if (method != "GET" && method != "HEAD") {
    ex.answer_error(405, "method_not_allowed", "GET /queues");
    return true;
  }
  // Not through services.shared: a reload on another thread may be adding slots to it.
  const auto registry = find_queue_registry(gw.services());  // null: no queue configured yet
  json list = json::array();
  if (registry) {
    std::lock_guard lock(registry->mu);
    for (const auto& [name, store] : registry->by_name)
      list.push_back(stats_json(store->stats()));
  }
  extension::answer_json(ex, 200, {{"queues", list}});
  return true;
}

// /queues/<name>/...: actions post to the queue's thread and read dead letters from its
// storage (Redis commands, files), so they run on the main thread (the admin endpoint default).
bool handle(Exchange& ex, extension::AdminView& gw) {
  const std::string_view path = ex.request().path();
  if (!path.starts_with("/queues/")) return false;
  const std::string_view method = ex.request().method();
  const auto registry = find_queue_registry(gw.services());
  const auto parts = split(path);      // "queues", name, action...
  if (parts.size() < 2) return false;  // "/queues/" is the list's
  std::shared_ptr<queue::StoreAndForward> store;
  if (registry) {
    std::lock_guard lock(registry->mu);
    auto it = registry->by_name.find(std::string(parts[1]));
    if (it != registry->by_name.end()) store = it->second;
  }
  if (!store) {
    ex.answer_error(404, "not_found", "no queue named \"" + std::string(parts[1]) + "\"");
    return true;
  }
  const std::string usage =
      "POST /queues/<name>/{pause,resume,drain}, GET /queues/<name>/dead, "
      "POST /queues/<name>/dead/<id>/requeue, DELETE /queues/<name>/dead/<id>";
  if (parts.size() == 3 && parts[2] != "dead") {
    if (method != "POST") {
      ex.answer_error(405, "method_not_allowed", usage);
      return true;
    }
    if (parts[2] == "pause") {
      store->pause();
    } else if (parts[2] == "resume") {
      store->resume();
    } else if (parts[2] == "drain") {
      store->drain();
    } else {
      ex.answer_error(404, "not_found", usage);
      return true;
    }
    extension::answer_json(ex, 200, stats_json(store->stats()));
    return true;
  }
  if (parts.size() == 3) {  // dead
    if (method != "GET" && method != "HEAD") {
      ex.answer_error(405, "method_not_allowed", usage);
      return true;
    }
    json list = json::array();
    for (const auto& d : store->dead_letters())
      list.push_back(dead_json(d));
    extension::answer_json(ex, 200, {{"queue", store->options().name}, {"dead_letters", list}});
    return true;
  }
  std::uint64_t id = 0;
  const bool numeric =
      parts.size() >= 4 && parts[2] == "dead" &&
      std::from_chars(parts[3].data(), parts[3].data() + parts[3].size(), id).ptr ==
          parts[3].data() + parts[3].size();
  if (!numeric || parts.size() > 5) {
    ex.answer_error(404, "not_found", usage);
    return true;
  }
  if (parts.size() == 4 && method == "DELETE") {
    if (!store->drop(id)) {
      ex.answer_error(404, "not_found", "no dead letter " + std::to_string(id));
      return true;
    }
    extension::answer_json(ex, 200, {{"dropped", id}});
    return true;
  }
  if (parts.size() == 5 && parts[4] == "requeue" && method == "POST") {
    std::string error;
    const std::uint64_t queued = store->requeue(id, error);
    if (queued == 0) {
      ex.answer_error(error.starts_with("no dead letter") ? 404 : 503,
                      error.starts_with("no dead letter") ? "not_found" : "queue_full", error);
      return true;
    }
    extension::answer_json(ex, 200, {{"requeued", id}, {"queued", queued}});
    return true;
  }
  ex.answer_error(405, "method_not_allowed", usage);
  return true;
}

// In this order: the list first, on the admin thread; the rest on the main thread.
const extension::AdminEndpointRegistrar list_endpoint(
    {"/queues", handle_list, extension::AdminEndpoint::Thread::kAdminThread});
const extension::AdminEndpointRegistrar endpoint({"/queues/", handle});

}  // namespace
}  // namespace sluice::middleware
