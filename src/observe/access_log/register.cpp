// The `access_log:` config section. Off unless configured (so `make run` stays quiet); a section
// with any key turns it on unless `enabled: false`.
//
//   access_log:
//     path: /var/log/sluice/access.log    # or "stdout" / "-" (the default)
//     queue_lines: 65536                  # full queue: the line is dropped and counted
//     queue_bytes: 67108864
// SIGUSR1 reopens the file (after logrotate renamed it).
#include "observe/access_log/access_log_observer.hpp"
#include "observe/access_log/writer_pool.hpp"
#include "sluice/extension/config_section.hpp"

namespace sluice::observe {
namespace {

const extension::ConfigSectionRegistrar section("access_log", [](Settings& s, ConfigBuild& config,
                                                                 GatewayServices& services) {
  auto& pool = WriterPool::of(services);
  pool.reap();  // writers of configs released since the last load
  if (!s.has("enabled") && s.canonical() == "{}") return;
  const bool enabled = s.boolean("enabled", true);
  AccessLogWriter::Options options;
  options.path = s.string("path", "stdout");
  if (options.path == "stdout") options.path = "-";
  options.max_queue_lines = static_cast<std::size_t>(
      s.integer("queue_lines", static_cast<std::int64_t>(options.max_queue_lines), 1, 1 << 24));
  options.max_queue_bytes = static_cast<std::size_t>(
      s.integer("queue_bytes", static_cast<std::int64_t>(options.max_queue_bytes), 4096,
                std::int64_t{1} << 34));
  if (!enabled) {
    for (const char* key : {"path", "queue_lines", "queue_bytes"})
      if (s.has(key)) s.error(key, "has no effect with enabled: false (no access log)");
  }
  if (!enabled || !s.ok()) return;
  auto writer = pool.get(options);
  config.observers.push_back(std::make_shared<AccessLogObserver>(writer, pool.latencies()));
  std::weak_ptr<AccessLogWriter> weak = writer;
  config.on_reopen.push_back([weak] {
    if (auto w = weak.lock()) w->reopen();
  });
});

}  // namespace
}  // namespace sluice::observe
