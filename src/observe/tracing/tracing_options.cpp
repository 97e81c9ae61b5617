#include "observe/tracing/tracing_options.hpp"

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace sluice::observe {

std::string TracingOptions::exporter_key() const {
  std::ostringstream k;
  const auto& e = exporter;
  k << e.traces_url() << '\n' << e.service_name << '\n' << e.scope_name << '\n';
  for (const auto& [n, v] : e.resource_attributes)
    k << "r:" << n << '=' << v << '\n';
  for (const auto& [n, v] : e.headers)
    k << "h:" << n << '=' << v << '\n';
  k << "tls:" << e.ca_file << '\n' << e.client_cert_file << '\n' << e.client_key_file << '\n';
  k << e.max_queue_size << ',' << e.max_export_batch_size << ',' << e.schedule_delay.count() << ','
    << e.export_timeout.count() << ',' << e.max_retries << ',' << e.initial_backoff.count() << ','
    << e.max_backoff.count();
  return k.str();
}

TracingOptions read_tracing_options(const Settings& s, std::vector<std::string>& warnings) {
  TracingOptions o;
  // Absent and empty (`tracing: {}`) look the same here: both leave tracing off.
  if (!s.has("enabled") && s.canonical() == "{}") return o;
  o.enabled = s.boolean("enabled", true);
  if (const char* off = std::getenv("OTEL_SDK_DISABLED"); off && std::string(off) == "true") {
    o.enabled = false;
  }

  OtlpConfig base;
  base.scope_name = "sluice";
  o.exporter = from_env(base, &warnings);
  auto& e = o.exporter;
  if (auto v = s.optional_string("service_name")) e.service_name = *v;
  if (auto v = s.optional_string("endpoint")) {
    e.endpoint = *v;
    e.traces_endpoint.clear();  // as with OTEL_EXPORTER_OTLP_ENDPOINT
  }
  if (auto v = s.optional_string("traces_endpoint")) e.traces_endpoint = *v;
  for (const auto* key : {"endpoint", "traces_endpoint"}) {
    auto v = s.optional_string(key);
    if (v && !v->starts_with("http://") && !v->starts_with("https://"))
      s.error(key, "must be an http:// or https:// URL, got \"" + *v + "\"");
  }
  // https: the CA bundle (the system's by default) and an optional client certificate.
  if (s.has("tls")) {
    Settings tls = s.child("tls");
    e.ca_file = tls.string("ca_file", e.ca_file);
    e.client_cert_file = tls.string("cert_file", e.client_cert_file);
    e.client_key_file = tls.string("key_file", e.client_key_file);
    auto check = [&](const char* key, const std::string& path) {
      if (tls.has(key) && !std::ifstream(path).good())
        tls.error(key, "cannot read \"" + path + "\"");
    };
    check("ca_file", e.ca_file);
    check("cert_file", e.client_cert_file);
    check("key_file", e.client_key_file);
    if (e.client_cert_file.empty() != e.client_key_file.empty())
      tls.error(e.client_cert_file.empty() ? "cert_file" : "key_file",
                "a client certificate needs both cert_file and key_file");
  }
  if (s.has("resource_attributes")) {
    auto attrs = s.string_map("resource_attributes");
    // The file's attributes replace the variable's entries with the same key.
    for (auto& [k, v] : attrs) {
      std::erase_if(e.resource_attributes, [&](const auto& kv) { return kv.first == k; });
      if (k == "service.name" && !s.has("service_name"))
        e.service_name = v;
      else
        e.resource_attributes.emplace_back(k, v);
    }
  }
  if (s.has("headers")) e.headers = s.string_map("headers");
  Settings batch = s.child("batch");
  e.max_queue_size = static_cast<std::size_t>(
      batch.integer("max_queue_size", static_cast<std::int64_t>(e.max_queue_size), 1, 1 << 22));
  e.max_export_batch_size = static_cast<std::size_t>(batch.integer(
      "max_export_batch_size", static_cast<std::int64_t>(e.max_export_batch_size), 1, 1 << 20));
  if (e.max_export_batch_size > e.max_queue_size) {
    batch.error("max_export_batch_size", "must not exceed max_queue_size");
  }
  e.schedule_delay = batch.millis("schedule_delay_ms", e.schedule_delay);
  e.export_timeout = batch.millis("export_timeout_ms", e.export_timeout);
  e.max_retries = static_cast<int>(batch.integer("max_retries", e.max_retries, 0, 100));
  e.initial_backoff = batch.millis("initial_backoff_ms", e.initial_backoff);
  e.max_backoff = batch.millis("max_backoff_ms", e.max_backoff);

  std::string env_error;
  o.sampler = sampler_from_env(o.sampler, &env_error);
  if (!env_error.empty()) warnings.push_back(env_error);
  auto name = s.optional_string("sampler");
  auto arg = s.optional_string("sampler_arg");
  if (!arg) arg = s.optional_string("ratio");
  if (name || arg) {
    // A ratio alone keeps the sampler kind of the environment (or the default ratio sampler).
    std::string kind = name ? *name : "parentbased_traceidratio";
    if (!name && o.sampler.kind() == Sampler::Kind::kTraceIdRatio)
      kind = o.sampler.is_parent_based() ? "parentbased_traceidratio" : "traceidratio";
    std::string error;
    auto parsed = parse_sampler(kind, arg.value_or(""), &error);
    if (parsed)
      o.sampler = *parsed;
    else
      s.error(name ? "sampler" : (s.has("sampler_arg") ? "sampler_arg" : "ratio"), error);
  }
  o.per_middleware_spans = s.boolean("per_middleware_spans", false);
  o.tail = read_tail_sampling(s);
  return o;
}

}  // namespace sluice::observe
