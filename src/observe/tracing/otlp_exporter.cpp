// httplib options first: see core/httplib_options.hpp.
#include "core/httplib_options.hpp"

#include "observe/tracing/otlp_exporter.hpp"

#include <httplib.h>
#include <pthread.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <random>

#include "core/http_text.hpp"
#include "core/own_file_table.hpp"
#include "net/system_ca_bundle.hpp"
#include "observe/json_escape.hpp"
#include "observe/tracing/span_record.hpp"

namespace sluice::observe {

using net::kSystemCaBundle;
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

const char* env(const char* name) {
  const char* v = std::getenv(name);
  return (v != nullptr && *v != '\0') ? v : nullptr;
}

// A non-negative integer environment variable, or nullopt (with a warning when malformed).
std::optional<uint64_t> env_uint(const char* name, std::vector<std::string>* warnings) {
  const char* v = env(name);
  if (v == nullptr) return std::nullopt;
  const std::string_view s = detail::trim_ows(v);
  uint64_t out = 0;
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  if (ec != std::errc() || ptr != s.data() + s.size()) {
    if (warnings) warnings->push_back(std::string(name) + "=\"" + v + "\" is not an integer");
    return std::nullopt;
  }
  return out;
}

void append_attribute(std::string& out, std::string_view key, std::string_view value) {
  out += "{\"key\":";
  append_json_string(out, key);
  out += ",\"value\":{\"stringValue\":";
  append_json_string(out, value);
  out += "}}";
}

// Everything of an ExportTraceServiceRequest before the first span: built once per exporter.
std::string otlp_json_prefix(const OtlpConfig& config) {
  std::string out = "{\"resourceSpans\":[{\"resource\":{\"attributes\":[";
  append_attribute(out, "service.name", config.service_name);
  for (const auto& [k, v] : config.resource_attributes) {
    if (k == "service.name") continue;
    out += ',';
    append_attribute(out, k, v);
  }
  out += "]},\"scopeSpans\":[{\"scope\":{\"name\":";
  append_json_string(out, config.scope_name);
  if (!config.scope_version.empty()) {
    out += ",\"version\":";
    append_json_string(out, config.scope_version);
  }
  out += "},\"spans\":[";
  return out;
}

constexpr std::string_view kJsonSuffix = "]}]}]}";

// A swapped-out queue or body buffer larger than this is freed rather than kept for reuse.
constexpr std::size_t kKeepCapacity = 4u << 20;

// The offset after `count` records from records[at] (each starts with its u32 size).
std::size_t skip_records(std::string_view records, std::size_t at, std::size_t count) {
  for (std::size_t i = 0; i < count; ++i) {
    uint32_t size;
    std::memcpy(&size, records.data() + at, sizeof size);
    at += size;
  }
  return at;
}

// Encodes `count` records from records[at] into `body` (cleared first).
void encode_records(const std::string& prefix, std::string_view records, std::size_t at,
                    std::size_t count, ByteBuffer& body) {
  body.clear();
  body += prefix;
  for (std::size_t i = 0; i < count; ++i) {
    if (i != 0) body += ',';
    at += append_span_json(records, at, body);
  }
  body += kJsonSuffix;
}

bool is_retryable_status(int status) {
  return status == 429 || status == 502 || status == 503 || status == 504;
}

// Retry-After in delta-seconds (the form collectors send); an HTTP-date is not honoured.
std::optional<milliseconds> retry_after(const httplib::Result& res) {
  if (!res || !res->has_header("Retry-After")) return std::nullopt;
  const std::string v = res->get_header_value("Retry-After");
  uint64_t seconds = 0;
  const auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), seconds);
  if (ec != std::errc() || ptr != v.data() + v.size()) return std::nullopt;
  return milliseconds(std::min<uint64_t>(seconds, 3600) * 1000);
}

struct SplitUrl {
  std::string scheme_host_port;
  std::string path;
};

std::optional<SplitUrl> split_url(const std::string& url) {
  const auto scheme_end = url.find("://");
  if (scheme_end == std::string::npos) return std::nullopt;
  const std::string scheme = url.substr(0, scheme_end);
  if (scheme != "http" && scheme != "https") return std::nullopt;
  const auto path_start = url.find('/', scheme_end + 3);
  SplitUrl out;
  out.scheme_host_port = url.substr(0, path_start);
  out.path = path_start == std::string::npos ? "/" : url.substr(path_start);
  if (out.scheme_host_port.size() == scheme_end + 3) return std::nullopt;  // no host
  return out;
}

}  // namespace

std::string OtlpConfig::traces_url() const {
  if (!traces_endpoint.empty()) return traces_endpoint;
  std::string url = endpoint;
  if (!url.empty() && url.back() == '/') url.pop_back();
  return url + "/v1/traces";
}

std::optional<std::vector<std::pair<std::string, std::string>>> parse_key_value_list(
    std::string_view text) {
  std::vector<std::pair<std::string, std::string>> out;
  while (true) {
    const auto comma = text.find(',');
    const std::string_view item = detail::trim_ows(text.substr(0, comma));
    if (!item.empty()) {
      const auto eq = item.find('=');
      if (eq == std::string_view::npos) return std::nullopt;
      auto key = detail::percent_decode(detail::trim_ows(item.substr(0, eq)));
      auto value = detail::percent_decode(detail::trim_ows(item.substr(eq + 1)));
      if (!key || !value || key->empty()) return std::nullopt;
      out.emplace_back(std::move(*key), std::move(*value));
    }
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return out;
}

OtlpConfig from_env(OtlpConfig base, std::vector<std::string>* warnings) {
  auto warn = [&](std::string m) {
    if (warnings) warnings->push_back(std::move(m));
  };
  auto merge = [](std::vector<std::pair<std::string, std::string>>& into,
                  std::vector<std::pair<std::string, std::string>> from) {
    for (auto& [k, v] : from) {
      std::erase_if(into, [&](const auto& e) { return e.first == k; });
      into.emplace_back(std::move(k), std::move(v));
    }
  };

  if (const char* v = env("OTEL_RESOURCE_ATTRIBUTES")) {
    if (auto attrs = parse_key_value_list(v)) {
      for (auto it = attrs->begin(); it != attrs->end();) {
        if (it->first == "service.name") {
          base.service_name = it->second;
          it = attrs->erase(it);
        } else {
          ++it;
        }
      }
      merge(base.resource_attributes, std::move(*attrs));
    } else {
      warn(
          "OTEL_RESOURCE_ATTRIBUTES is malformed (expected k=v,k2=v2 with percent-encoding); "
          "ignored");
    }
  }
  if (const char* v = env("OTEL_SERVICE_NAME")) base.service_name = v;
  if (const char* v = env("OTEL_EXPORTER_OTLP_ENDPOINT")) {
    base.endpoint = v;
    base.traces_endpoint.clear();
  }
  if (const char* v = env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")) base.traces_endpoint = v;
  // The traces-specific variable wins over the general one (listed second).
  for (const char* name :
       {"OTEL_EXPORTER_OTLP_CERTIFICATE", "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE"})
    if (const char* v = env(name)) base.ca_file = v;
  for (const char* name :
       {"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE"})
    if (const char* v = env(name)) base.client_cert_file = v;
  for (const char* name : {"OTEL_EXPORTER_OTLP_CLIENT_KEY", "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY"})
    if (const char* v = env(name)) base.client_key_file = v;
  for (const char* name : {"OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS"}) {
    if (const char* v = env(name)) {
      if (auto headers = parse_key_value_list(v)) {
        merge(base.headers, std::move(*headers));
      } else {
        warn(std::string(name) + " is malformed; ignored");
      }
    }
  }
  for (const char* name : {"OTEL_BSP_EXPORT_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT",
                           "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT"}) {
    if (auto ms = env_uint(name, warnings)) base.export_timeout = milliseconds(*ms);
  }
  if (auto ms = env_uint("OTEL_BSP_SCHEDULE_DELAY", warnings)) {
    base.schedule_delay = milliseconds(*ms);
  }
  if (auto n = env_uint("OTEL_BSP_MAX_QUEUE_SIZE", warnings)) base.max_queue_size = *n;
  if (auto n = env_uint("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", warnings)) {
    base.max_export_batch_size = *n;
  }
  if (base.max_export_batch_size == 0 || base.max_export_batch_size > base.max_queue_size) {
    warn("max_export_batch_size must be in [1, max_queue_size]; using max_queue_size");
    base.max_export_batch_size = std::max<std::size_t>(base.max_queue_size, 1);
  }
  return base;
}

std::string encode_otlp_json(const OtlpConfig& config, const SpanData* spans, std::size_t count) {
  ByteBuffer records;
  for (std::size_t i = 0; i < count; ++i)
    append_span_record(records, spans[i]);
  ByteBuffer out;
  encode_records(otlp_json_prefix(config), records.view(), 0, count, out);
  return std::string(out.view());
}

OtlpExporter::OtlpExporter(OtlpConfig config, ErrorHandler on_error)
    : config_(std::move(config)),
      on_error_(std::move(on_error)),
      url_(config_.traces_url()),
      json_prefix_(otlp_json_prefix(config_)) {
  thread_ = std::thread([this] { run(); });
}

OtlpExporter::~OtlpExporter() {
  shutdown();
}

bool OtlpExporter::admit_locked(std::size_t count) {
  if (stopping_ || held_.load(std::memory_order_relaxed) + count > config_.max_queue_size) {
    dropped_.fetch_add(count, std::memory_order_relaxed);
    return false;
  }
  return true;
}

bool OtlpExporter::enqueue(SpanData&& span) {
  bool wake = false;
  {
    std::lock_guard lock(mu_);
    if (!admit_locked(1)) return false;
    append_span_record(queue_, span);
    ++queued_spans_;
    held_.fetch_add(1, std::memory_order_relaxed);
    wake = queued_spans_ == config_.max_export_batch_size;
  }
  if (wake) wake_.notify_one();
  return true;
}

bool OtlpExporter::enqueue_records(std::string_view records, std::size_t count) {
  bool wake = false;
  {
    std::lock_guard lock(mu_);
    if (!admit_locked(count)) return false;
    queue_.append(records);
    const std::size_t before = queued_spans_;
    queued_spans_ += count;
    held_.fetch_add(count, std::memory_order_relaxed);
    // Wake the exporter once per full batch, not per span: a notify is a syscall when it sleeps.
    wake = before < config_.max_export_batch_size && queued_spans_ >= config_.max_export_batch_size;
  }
  if (wake) wake_.notify_one();
  return true;
}

bool OtlpExporter::flush(milliseconds timeout) {
  std::unique_lock lock(mu_);
  if (stopping_) {
    return flushed_.wait_for(lock, timeout, [&] { return held_.load() == 0; });
  }
  const uint64_t ticket = ++flush_requested_;
  wake_.notify_one();
  return flushed_.wait_for(lock, timeout, [&] { return flush_done_ >= ticket; });
}

void OtlpExporter::shutdown(milliseconds timeout) {
  std::call_once(shutdown_once_, [&] {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
      stop_deadline_ = Clock::now() + timeout;
    }
    wake_.notify_one();
    if (thread_.joinable()) thread_.join();
  });
}

void OtlpExporter::report(const std::string& message) {
  if (on_error_) on_error_(message);
}

bool OtlpExporter::backoff_wait(milliseconds d) {
  std::unique_lock lock(mu_);
  const auto until = Clock::now() + d;
  // Only a shutdown whose deadline comes before the retry cuts the wait short.
  auto give_up = [&] { return stopping_ && until >= stop_deadline_; };
  if (give_up()) return false;
  wake_.wait_until(lock, until, give_up);
  return !give_up();
}

void OtlpExporter::export_batch(httplib::Client& client, const std::string& path,
                                const ByteBuffer& body, std::size_t count) {
  httplib::Headers headers(config_.headers.begin(), config_.headers.end());
  thread_local std::minstd_rand jitter_rng(std::random_device{}());
  milliseconds backoff = config_.initial_backoff;
  for (int attempt = 0;; ++attempt) {
    // Streamed from the reused buffer: the (const char*, size) overload would copy the whole
    // body into a std::string first.
    auto res = client.Post(
        path, headers, body.size(),
        [&body](std::size_t offset, std::size_t length, httplib::DataSink& sink) {
          return sink.write(body.data() + offset, std::min(length, body.size() - offset));
        },
        "application/json");
    std::string problem;
    bool retryable = true;
    if (res && res->status >= 200 && res->status < 300) {
      exported_.fetch_add(count, std::memory_order_relaxed);
      return;
    }
    if (!res) {
      problem = "connection error: " + httplib::to_string(res.error());
    } else {
      problem = "HTTP " + std::to_string(res->status);
      retryable = is_retryable_status(res->status);
    }
    if (retryable && attempt < config_.max_retries) {
      std::uniform_int_distribution<int> pct(80, 120);
      milliseconds wait = backoff * pct(jitter_rng) / 100;
      if (auto ra = retry_after(res)) wait = *ra;
      wait = std::min(wait, config_.max_backoff);
      backoff = std::min(backoff * 2, config_.max_backoff);
      if (backoff_wait(wait)) {
        retries_.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      problem += " (shutting down)";
    }
    failed_exports_.fetch_add(1, std::memory_order_relaxed);
    dropped_.fetch_add(count, std::memory_order_relaxed);
    report("OTLP export to " + url_ + " failed, " + std::to_string(count) +
           " spans dropped: " + problem + " after " + std::to_string(attempt + 1) + " attempt(s)");
    return;
  }
}

void OtlpExporter::run() {
  // It needs no descriptor of the process (its connections, the CA files are its own): a table
  // of its own leaves the worker's to the worker, with no file reference per socket call.
  detail::leave_shared_file_table("OTLP exporter");
  ::pthread_setname_np(::pthread_self(), "sluice-otlp");
  const auto split = split_url(url_);
  if (!split) report("OTLP traces URL \"" + url_ + "\" is not an http(s) URL; spans are dropped");
  std::unique_ptr<httplib::Client> client;
  if (split) {
    const bool with_client_certificate =
        !config_.client_cert_file.empty() && !config_.client_key_file.empty();
    client = with_client_certificate
                 ? std::make_unique<httplib::Client>(
                       split->scheme_host_port, config_.client_cert_file, config_.client_key_file)
                 : std::make_unique<httplib::Client>(split->scheme_host_port);
    if (split->scheme_host_port.starts_with("https://")) {
      // Verified against the configured bundle or the system's, the name included (httplib
      // checks the subjectAltNames of the collector's certificate against the URL's host).
      client->set_ca_cert_path(config_.ca_file.empty() ? kSystemCaBundle : config_.ca_file);
      client->enable_server_certificate_verification(true);
    }
    const auto t = config_.export_timeout;
    const auto sec = static_cast<time_t>(t.count() / 1000);
    const auto usec = static_cast<time_t>((t.count() % 1000) * 1000);
    client->set_connection_timeout(sec, usec);
    client->set_read_timeout(sec, usec);
    client->set_write_timeout(sec, usec);
    client->set_keep_alive(true);
    // Headers and body go out in separate writes: without TCP_NODELAY, Nagle and delayed ACKs
    // add ~40 ms per request.
    client->set_tcp_nodelay(true);
  }

  ByteBuffer batch;  // swapped with queue_: both keep their capacity
  ByteBuffer body;   // reused for every export
  auto next_export = Clock::now() + config_.schedule_delay;
  while (true) {
    uint64_t flush_ticket = 0;
    bool stopping = false;
    std::size_t spans = 0;
    {
      std::unique_lock lock(mu_);
      wake_.wait_until(lock, next_export, [&] {
        return stopping_ || queued_spans_ >= config_.max_export_batch_size ||
               flush_requested_ > flush_done_;
      });
      batch.swap(queue_);
      spans = queued_spans_;
      queued_spans_ = 0;
      flush_ticket = flush_requested_;
      stopping = stopping_;
    }
    next_export = Clock::now() + config_.schedule_delay;
    std::size_t at = 0;
    for (std::size_t done = 0; done < spans; done += config_.max_export_batch_size) {
      const std::size_t n = std::min(config_.max_export_batch_size, spans - done);
      const std::size_t next = skip_records(batch.view(), at, n);
      if (client) {
        try {
          encode_records(json_prefix_, batch.view(), at, n, body);
          export_batch(*client, split->path, body, n);
        } catch (const std::exception& e) {  // e.g. bad_alloc: lose the batch, not the process
          dropped_.fetch_add(n, std::memory_order_relaxed);
          failed_exports_.fetch_add(1, std::memory_order_relaxed);
          report(std::string("OTLP export failed: ") + e.what());
        }
      } else {
        dropped_.fetch_add(n, std::memory_order_relaxed);
        failed_exports_.fetch_add(1, std::memory_order_relaxed);
      }
      held_.fetch_sub(n, std::memory_order_relaxed);
      at = next;
    }
    batch.clear();
    if (batch.capacity() > kKeepCapacity) batch.release();  // after a burst
    if (body.capacity() > kKeepCapacity) body.release();
    {
      std::lock_guard lock(mu_);
      flush_done_ = std::max(flush_done_, flush_ticket);
      if (stopping && queued_spans_ == 0) break;
    }
    flushed_.notify_all();
  }
  flushed_.notify_all();
}

}  // namespace sluice::observe
