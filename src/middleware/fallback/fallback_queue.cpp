// The `queue` fallback's hooks in FallbackMiddleware (see fallback_queue.hpp): storing a write
// and answering for it, and the replays' way to the cluster (the fallback's shadow client, with
// the cluster's balancer picking a healthy endpoint).
#include "middleware/fallback/fallback_queue.hpp"

#include <boost/asio/post.hpp>
#include <mutex>
#include <optional>
#include <random>

#include "core/http_message.hpp"
#include "middleware/fallback/fallback_middleware.hpp"
#include "observe/json_escape.hpp"
#include "observe/replay_record.hpp"
#include "sluice/instance_state.hpp"
#include "sluice/services.hpp"
#include "upstream/detached_call.hpp"

namespace sluice::middleware {
namespace {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// Not stored: framing and the connection are the replay's own; Host is the endpoint's.
bool stored(std::string_view header) {
  for (std::string_view skip : {"Content-Length", "Transfer-Encoding", "Connection", "Keep-Alive",
                                "Upgrade", "TE", "Trailer", "Proxy-Connection", "Host"})
    if (iequals(header, skip)) return false;
  return true;
}

std::string new_idempotency_key() {
  thread_local std::mt19937_64 random{std::random_device{}()};
  static const char* hex = "0123456789abcdef";
  std::string key = "sluice-";
  for (int i = 0; i < 2; ++i) {
    const std::uint64_t v = random();
    for (int k = 0; k < 16; ++k)
      key.push_back(hex[(v >> (4 * k)) & 0xF]);
  }
  return key;
}

bool queued_method(const QueueFallback& q, std::string_view method) {
  return std::find(q.methods.begin(), q.methods.end(), method) != q.methods.end();
}

queue::ReplayAnswer to_answer(upstream::DetachedResult r) {
  queue::ReplayAnswer a;
  if (r.ok) {
    a.kind = queue::ReplayAnswer::Kind::kAnswered;
    a.status = r.status;
    for (const auto& [name, value] : r.headers)
      if (iequals(name, "Retry-After")) a.retry_after = value;
    a.body = std::move(r.body);
  } else if (r.timed_out) {
    a.kind = queue::ReplayAnswer::Kind::kTimedOut;
    a.error = "timed out";
  } else {
    // Refused before a byte went out: the outage goes on. After the connection: the write may
    // have arrived, it counts as an attempt.
    const bool before = r.error.rfind("connect", 0) == 0 || r.error.rfind("resolve", 0) == 0;
    a.kind = before ? queue::ReplayAnswer::Kind::kUnreachable : queue::ReplayAnswer::Kind::kError;
    a.error = std::move(r.error);
  }
  return a;
}

// The body as it arrived: the proxy moves the request's body into the upstream request.
struct QueueCall {
  std::string body;
  bool body_too_large = false;  // or streamed
  bool stored = false;          // the body went into a record: never stored twice
};

}  // namespace

void FallbackMiddleware::prepare_queue(Exchange& ex) {
  Request& in = ex.request();
  for (const auto& f : config_.fallbacks) {
    if (!f.queue || !queued_method(*f.queue, in.method())) continue;
    if (!in.has_header("Idempotency-Key")) in.set_header("Idempotency-Key", new_idempotency_key());
    auto& call = InstanceState<QueueCall>::emplace(ex.context(), this);
    call.body_too_large = ex.request_body_stream() || in.body().size() > f.queue->max_body;
    if (!call.body_too_large) call.body = in.body();
    return;
  }
}

namespace {

// The client's answer once the storage said: 202 with the id, or 503 + Retry-After.
void answer_enqueued(Exchange& ex, const QueueFallback& q, const queue::Appended& stored_as,
                     const std::string& key) {
  std::string detail(ex.detail());
  if (stored_as.id == 0) {
    const char* why = stored_as.error == queue::Appended::Error::kFull ? "queue_full"
                      : stored_as.error == queue::Appended::Error::kUnavailable
                          ? "queue_backend_down"
                          : "queue_unavailable";
    ex.answer_error(503, why,
                    "the write was not accepted (" + stored_as.error_text + "); try again later");
    ex.response().set_header("Retry-After", std::to_string(q.retry_after_s));
    ex.set_detail((detail.empty() ? "" : detail + ",") + why);
    return;
  }
  const std::string id = stored_as.label.empty() ? std::to_string(stored_as.id) : stored_as.label;
  std::string body = q.accepted_body;
  if (body.empty()) {  // the client's key is any bytes: escaped to valid JSON and UTF-8
    body = "{\"queued\":";
    observe::append_json_string(body, id);
    body += ",\"idempotency_key\":";
    observe::append_json_string(body, key);
    body += "}\n";
  }
  ex.answer(202, q.accepted_body.empty() ? "application/json" : "text/plain; charset=utf-8",
            std::move(body));
  ex.response().set_header("X-Sluice-Queued", id);
  ex.response().set_header("Idempotency-Key", key);
  ex.set_detail((detail.empty() ? "" : detail + ",") + "queued:" + id +
                (stored_as.spilled ? ",queued_local" : ""));
}

// The storage's answer and the request's wait meet here, whichever comes first.
struct Handoff {
  std::mutex mu;
  std::optional<queue::Appended> result;
  Resume resume;
  std::function<void(Exchange&, const queue::Appended&)> finish;
};

}  // namespace

FallbackMiddleware::Outcome FallbackMiddleware::serve_queue(Exchange& ex, const FallbackSpec& f,
                                                            bool allow_async, Resume* deferred) {
  const QueueFallback& q = *f.queue;
  const Request& in = ex.request();
  if (!q.store || !queued_method(q, in.method())) return Outcome::kNone;
  // A Redis queue answers later; recover() cannot wait for it.
  if (q.store->answers_later() && !allow_async) return Outcome::kNone;
  auto* call = InstanceState<QueueCall>::find(ex.context(), this);
  if (call != nullptr && call->stored) return Outcome::kNone;
  if (call == nullptr || call->body_too_large || call->body.size() > q.max_body) {
    std::string detail(ex.detail());
    ex.set_detail(detail.empty() ? "not_queued:body_too_large"
                                 : detail + ",not_queued:body_too_large");
    return Outcome::kNone;
  }
  queue::QueuedRequest r;
  r.method = in.method();
  r.target = in.target();
  in.visit_headers([&](std::string_view name, std::string_view value) {
    if (stored(name)) r.headers.emplace_back(name, value);
  });
  r.body = std::move(call->body);
  call->stored = true;
  r.idempotency_key = in.header("Idempotency-Key");
  if (r.idempotency_key.empty()) r.idempotency_key = new_idempotency_key();
  switch (q.order_by) {
    case QueueFallback::OrderBy::kHeader:
      r.order_key = in.header(q.order_header);
      break;
    case QueueFallback::OrderBy::kClient:
      r.order_key = ex.context().client_ip();
      break;
    case QueueFallback::OrderBy::kPath:
      r.order_key = in.path();
      break;
    case QueueFallback::OrderBy::kNone:
      break;
  }
  const std::string key = r.idempotency_key;
  auto h = std::make_shared<Handoff>();
  h->finish = [this, &f, queue = f.queue, key](Exchange& e, const queue::Appended& a) {
    answer_enqueued(e, *queue, a, key);
    mark(e, f);
  };
  q.store->enqueue(std::move(r), [h](queue::Appended a) {
    std::unique_lock lock(h->mu);
    if (!h->resume) {  // answered before the request started to wait: it answers itself
      h->result = std::move(a);
      return;
    }
    Resume resume = std::move(h->resume);
    lock.unlock();
    resume.with([h, a = std::move(a)](Exchange& e) {
      h->finish(e, a);
      return Decision::next();
    });
  });
  std::lock_guard lock(h->mu);
  if (h->result) {
    answer_enqueued(ex, q, *h->result, key);
    return Outcome::kServed;
  }
  h->resume = deferred != nullptr && *deferred ? std::move(*deferred) : ex.defer();
  return Outcome::kWaiting;
}

namespace {

// The replay's span: a new trace (the upstream sees it in traceparent), linked to the stored
// traceparent's span — the original request's.
void start_replay_trace(const queue::QueuedRequest& r, observe::ReplayRecord& rec) {
  for (const auto& [name, value] : r.headers) {
    if (!iequals(name, "traceparent")) continue;
    if (auto tp = observe::parse_traceparent(value)) {
      rec.linked_trace_id = tp->trace_id;
      rec.linked_span_id = tp->parent_id;
      rec.sampled = tp->sampled();
    }
    break;
  }
  for (const auto& [name, value] : r.headers)
    if (iequals(name, "X-Request-Id")) rec.request_id = value;
  rec.trace_id = observe::random_trace_id();
  rec.span_id = observe::random_span_id();
}

}  // namespace

void FallbackMiddleware::bind_queues(const ConfigBuild& build) {
  std::vector<std::shared_ptr<observe::ReplayRecorder>> recorders;
  for (const auto& o : build.observers)
    if (auto r = std::dynamic_pointer_cast<observe::ReplayRecorder>(o)) recorders.push_back(r);
  std::shared_ptr<const ClusterPicker> picker;
  {
    std::lock_guard lock(picker_mutex_);
    picker = picker_;
  }
  if (!picker) return;
  for (const auto& f : config_.fallbacks) {
    if (!f.queue || !f.queue->store) continue;
    f.queue->store->set_options(f.queue->options);
    f.queue->store->set_sender(
        [picker, recorders, queue_name = f.queue->options.name,
         redis = f.queue->options.backend != "local", cluster = f.cluster,
         timeout = f.queue->options.replay_timeout](boost::asio::io_context& io, std::uint64_t id,
                                                    const queue::QueuedRequest& r, int attempt,
                                                    queue::ReplayDone done) {
          upstream::DetachedTarget to = (*picker)(cluster);
          auto rec = std::make_shared<observe::ReplayRecord>();
          rec->queue = queue_name;
          // The id as the client saw it in X-Sluice-Queued.
          // (A Redis id is (ms since 2024) << 23, far above any id of the local spill.)
          rec->id = !redis                          ? std::to_string(id)
                    : id < (std::uint64_t{1} << 40) ? "local-" + std::to_string(id)
                                                    : queue::RedisStreamStorage::label_of(id);
          rec->attempt = attempt;
          rec->method = r.method;
          rec->target = r.target;
          rec->idempotency_key = r.idempotency_key;
          rec->start = std::chrono::system_clock::now();
          start_replay_trace(r, *rec);
          if (to.host.empty()) {  // no healthy endpoint (all ejected, or none)
            rec->error = "no healthy endpoint";
            for (const auto& o : recorders)
              o->on_replay(*rec);
            boost::asio::post(io, [done = std::move(done)] {
              queue::ReplayAnswer a;
              a.kind = queue::ReplayAnswer::Kind::kUnreachable;
              a.error = "no healthy endpoint";
              done(std::move(a));
            });
            return;
          }
          detail::RequestMessage msg;
          msg.method_string(r.method);
          msg.target(r.target);
          msg.version(11);
          for (const auto& [name, value] : r.headers)
            msg.insert(name, value);
          msg.set("Idempotency-Key", r.idempotency_key);
          msg.set("X-Sluice-Replay", rec->id + "; attempt=" + std::to_string(attempt));
          msg.body() = r.body;
          char traceparent[56];
          observe::format_traceparent(
              {0, rec->trace_id, rec->span_id,
               static_cast<std::uint8_t>((rec->sampled ? observe::kFlagSampled : 0) |
                                         observe::kFlagRandom)},
              traceparent);
          msg.set("traceparent", std::string_view(traceparent, 55));
          msg.erase("tracestate");  // the original trace's, not this one's
          rec->upstream = to.host + ":" + to.port;
          Request request(msg);
          const auto started = std::chrono::steady_clock::now();
          upstream::start_detached_copy(
              io, to, request, timeout,
              [done = std::move(done), rec, recorders, started](upstream::DetachedResult s) {
                rec->latency = std::chrono::steady_clock::now() - started;
                rec->status = s.ok ? s.status : 0;
                if (!s.ok) rec->error = s.timed_out ? "timed out" : s.error;
                for (const auto& o : recorders)
                  o->on_replay(*rec);
                done(to_answer(std::move(s)));
              });
        });
  }
}

}  // namespace sluice::middleware
