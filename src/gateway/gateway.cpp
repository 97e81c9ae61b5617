#include "gateway/gateway.hpp"

#include <prometheus/counter.h>
#include <prometheus/registry.h>
#include <spdlog/spdlog.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <fstream>
#include <functional>
#include <optional>
#include <thread>
#include <utility>

#include "gateway/admin/admin_api.hpp"
#include "gateway/config_watcher.hpp"
#include "observe/metrics/connections_collector.hpp"
#include "observe/metrics/metrics_registry.hpp"
#include "observe/metrics/sharded.hpp"
#include "security/reload_on_change.hpp"
#include "server/tls/tls_context.hpp"
#include "server/worker_cpus.hpp"

namespace sluice::gateway {

namespace {
constexpr auto kTlsFileCheckInterval = std::chrono::seconds(1);

// `worker_cpu_affinity: auto`: one CPU per worker, from those this process may run on. None
// with one worker: it has no other worker to keep connections from, and pinned it would lose
// the scheduler's choice of CPU (and pin the main thread it runs on, with every thread that
// thread starts later).
std::vector<int> worker_cpus_for(const GatewaySettings& settings) {
  if (!settings.worker_cpu_affinity || settings.workers < 2) return {};
  const auto allowed = server::allowed_cpus();
  auto cpus = server::worker_cpus(settings.workers, allowed);
  if (cpus.empty()) {
    spdlog::warn(
        "worker_cpu_affinity: the allowed CPUs cannot be read; the workers are not pinned");
    return cpus;
  }
  if (allowed.size() < static_cast<std::size_t>(settings.workers)) {
    spdlog::warn(
        "worker_cpu_affinity: {} workers on {} allowed CPUs: some workers share a CPU and split "
        "its connections",
        settings.workers, allowed.size());
  }
  std::string list;
  for (std::size_t i = 0; i < cpus.size(); ++i)
    list += (i == 0 ? "" : ", ") + std::to_string(i) + "->" + std::to_string(cpus[i]);
  spdlog::info("worker_cpu_affinity: worker->CPU {}", list);
  return cpus;
}
}  // namespace

namespace asio = boost::asio;

// An admin request's part that runs on the main thread, in the workers' file table; the admin
// thread waits for `done`.
struct Gateway::AdminJob {
  std::function<void()> work;  // empty: a reload, answered in `reload`
  ReloadResult reload;
  std::atomic<bool> done{false};
};

Gateway::Gateway(GatewayOptions options) : options_(std::move(options)) {
  // A Registry that also collects scrape-time collectables (process_*, sharded http_* series).
  services_.metrics = std::make_shared<observe::MetricsRegistry>();
  reloads_ = &prometheus::BuildCounter()
                  .Name("sluice_config_reloads_total")
                  .Help("Config reloads by result (ok, error).")
                  .Register(*services_.metrics);
  tls_handshake_errors_ = &prometheus::BuildCounter()
                               .Name("sluice_tls_handshake_errors_total")
                               .Help("Failed TLS handshakes on public listeners, by reason.")
                               .Register(*services_.metrics);
  auto& handshakes = prometheus::BuildCounter()
                         .Name("sluice_tls_handshakes_total")
                         .Help("Completed TLS handshakes on public listeners, full or resumed.")
                         .Register(*services_.metrics);
  tls_handshakes_full_ = &handshakes.Add({{"resumed", "false"}});
  tls_handshakes_resumed_ = &handshakes.Add({{"resumed", "true"}});
  proxy_protocol_errors_ =
      &prometheus::BuildCounter()
           .Name("sluice_proxy_protocol_errors_total")
           .Help("Connections closed before a valid PROXY protocol header, by reason.")
           .Register(*services_.metrics);
}

Gateway::~Gateway() {
  if (reload_thread_.joinable()) reload_thread_.join();
  if (workers_) workers_->stop();
  close_admin_jobs();  // an admin request waiting for the main thread gives up: admin_ stops
  if (admin_) admin_->stop();
}

LoadOutcome Gateway::load(const LoadedConfig* previous) {
  if (options_.config_path.empty()) {
    return load_config_text(default_config_text(), "<embedded default>", previous, services_);
  }
  return load_config_file(options_.config_path, previous, services_);
}

std::vector<std::string> Gateway::start() {
  // Signals are caught from here on: a SIGTERM that arrives right after the port file appears
  // must drain, not kill the process.
  control_ = std::make_unique<asio::io_context>(1);
  signals_ = std::make_unique<asio::signal_set>(*control_, SIGTERM, SIGINT, SIGHUP);
  signals_->add(SIGUSR1);
  auto outcome = load(nullptr);
  if (!outcome.ok()) return outcome.errors;
  const GatewaySettings settings = outcome.config->settings;
  settings_at_start_ = settings;  // listeners are bound once; a reload cannot move them
  spdlog::set_level(spdlog::level::from_str(settings.log_level));
  config_cell_ = std::make_unique<ConfigCell>(outcome.config);

  // Worker i writes metric shard i: no two workers write one metric's cache line per request.
  workers_ = std::make_unique<server::WorkerPool>(
      settings.workers, "sluice-w",
      [](int i) { observe::claim_shard_index(static_cast<std::size_t>(i)); },
      worker_cpus_for(settings));
  auto router = std::make_shared<Router>(*config_cell_);
  for (const auto& l : settings.listeners) {
    server::ListenerOptions options;
    options.proxy_protocol = l.proxy_protocol;
    options.tls = l.tls;
    options.on_tls_handshake_error = [family = tls_handshake_errors_](const char* reason) {
      family->Add({{"reason", reason}}).Increment();
    };
    options.on_tls_handshake = [full = tls_handshakes_full_,
                                resumed = tls_handshakes_resumed_](bool was_resumed) {
      (was_resumed ? resumed : full)->Increment();
    };
    options.on_proxy_protocol_error = [family = proxy_protocol_errors_](const char* reason) {
      family->Add({{"reason", reason}}).Increment();
    };
    auto s =
        std::make_unique<server::Server>(*workers_, settings.limits, router, "public", options);
    if (auto error = s->listen(l.host, l.port); !error.empty()) return {error};
    servers_.push_back(std::move(s));
  }
  if (settings.admin_enabled) {
    server::ServerLimits admin_limits;
    admin_limits.max_connections = 64;
    admin_limits.buffer_body_bytes = admin_limits.max_body_bytes + 1;  // never streamed
    // Bound on its own thread, in its own file table; the error comes back here.
    admin_ = std::make_unique<AdminThread>(admin_limits, std::make_shared<AdminApi>(*this));
    if (auto error = admin_->start(settings.admin.host, settings.admin.port); !error.empty()) {
      return {"admin: " + error};
    }
  }
  // One worker runs on the main thread (wait()): a single-threaded process does not share its
  // file table, so the kernel takes no file reference per socket call. The admin listener, the
  // access log writer, the OTLP exporter and the health checks have tables of their own
  // (core/own_file_table.hpp).
  worker_on_main_thread_ = workers_->size() == 1;
  workers_->start(worker_on_main_thread_);
  for (auto& s : servers_)
    s->start();
  for (std::size_t i = 0; i < servers_.size(); ++i) {
    spdlog::info("sluice listening on {}:{} ({} workers, config {})", settings.listeners[i].host,
                 servers_[i]->port(), workers_->size(), outcome.config->source);
  }
  if (admin_) {
    spdlog::info("sluice admin listening on {}:{}", settings.admin.host, admin_->port());
  }
  connections_collector_ = std::make_shared<observe::ConnectionsCollector>([this] {
    std::vector<observe::ListenerConnections> out;
    auto add = [&out](const server::Server::ConnectionCounts& c, unsigned short port,
                      std::string listener, const ListenAddress& at) {
      out.push_back({std::move(listener), at.host + ":" + std::to_string(port), c.open, c.accepted,
                     c.closed, c.refused, c.accepted_by_worker});
    };
    for (std::size_t i = 0; i < servers_.size(); ++i)
      add(servers_[i]->connection_counts(), servers_[i]->port(), "public",
          settings_at_start_.listeners[i]);
    if (admin_) add(admin_->connection_counts(), admin_->port(), "admin", settings_at_start_.admin);
    return out;
  });
  observe::add_collectable(*services_.metrics, connections_collector_);
  write_port_file();
  ready_ = true;
  return {};
}

void Gateway::write_port_file() {
  if (options_.port_file.empty()) return;
  const auto config = config_cell_->current();
  std::string tmp = options_.port_file + ".tmp";
  {
    std::ofstream out(tmp);
    for (std::size_t i = 0; i < servers_.size(); ++i) {
      out << "listen " << config->settings.listeners[i].host << ":" << servers_[i]->port() << "\n";
    }
    if (admin_) out << "admin " << config->settings.admin.host << ":" << admin_->port() << "\n";
  }
  std::rename(tmp.c_str(), options_.port_file.c_str());  // readers never see half a file
}

ReloadResult Gateway::reload(const std::string& trigger) {
  std::lock_guard lock(reload_mutex_);
  ReloadResult result;
  auto previous = config_cell_->current();
  auto outcome = load(previous.get());
  if (!outcome.ok()) {
    reloads_->Add({{"result", "error"}}).Increment();
    for (const auto& e : outcome.errors)
      spdlog::error("reload ({}): {}", trigger, e);
    spdlog::error("reload ({}) refused; the previous config keeps serving", trigger);
    result.errors = outcome.errors;
    return result;
  }
  result.restart_required = restart_required_changes(previous->settings, outcome.config->settings);
  const auto loaded_listeners = outcome.config->settings.listeners;  // with renewed certificates
  const auto loaded_admin = outcome.config->settings.admin;
  const bool loaded_admin_enabled = outcome.config->settings.admin_enabled;
  if (!result.restart_required.empty()) {
    std::string list;
    for (const auto& s : result.restart_required)
      list += (list.empty() ? "" : ", ") + s;
    spdlog::warn("reload ({}): {} changed; these take effect only after a restart", trigger, list);
    // Keep what is running: the listeners cannot move without a restart.
    outcome.config->settings.listeners = previous->settings.listeners;
    outcome.config->settings.workers = previous->settings.workers;
    outcome.config->settings.worker_cpu_affinity = previous->settings.worker_cpu_affinity;
    outcome.config->settings.admin = previous->settings.admin;
    outcome.config->settings.admin_enabled = previous->settings.admin_enabled;
    // The running admin listener keeps its guard with it: a reload that disables or moves it
    // must not leave it serving under the new config's token (none, when disabled).
    if (previous->settings.admin.text() != loaded_admin.text() ||
        previous->settings.admin_enabled != loaded_admin_enabled) {
      outcome.config->settings.admin_token = previous->settings.admin_token;
      outcome.config->settings.admin_open_paths = previous->settings.admin_open_paths;
    }
  }
  spdlog::set_level(spdlog::level::from_str(outcome.config->settings.log_level));
  // Certificates read again from their files: new connections get them, open ones keep theirs.
  // Also when another listener change waits for a restart, if this listener is still there.
  auto& running = outcome.config->settings.listeners;
  for (std::size_t i = 0; i < servers_.size() && i < running.size(); ++i) {
    if (i >= loaded_listeners.size() || loaded_listeners[i].text() != running[i].text()) continue;
    const auto& tls = loaded_listeners[i].tls;
    if (!tls || !servers_[i]->tls_context()) continue;
    servers_[i]->set_tls_context(tls);
    running[i].tls = tls;
  }
  config_cell_->publish(outcome.config);
  reloads_->Add({{"result", "ok"}}).Increment();
  spdlog::info("reload ({}): config {} applied, {} routes", trigger, outcome.config->source,
               outcome.config->routes->routes.size());
  result.ok = true;
  return result;
}

ReloadResult Gateway::reload_for_admin() {
  auto job = std::make_shared<AdminJob>();
  if (!wait_for_admin_job(job)) {
    ReloadResult stopped;
    stopped.errors.push_back("the gateway is stopping: no reload");
    return stopped;
  }
  return job->reload;
}

bool Gateway::run_for_admin(std::function<void()> work) {
  auto job = std::make_shared<AdminJob>();
  job->work = std::move(work);
  return wait_for_admin_job(job);
}

// Polled, not signalled: the admin thread's table has none of the main thread's descriptors to
// wake it through, and admin requests are rare. The main thread takes the jobs within 100 ms.
bool Gateway::wait_for_admin_job(const std::shared_ptr<AdminJob>& job) {
  {
    std::lock_guard lock(admin_jobs_mutex_);
    if (admin_jobs_closed_) return false;
    admin_jobs_.push_back(job);
  }
  while (!job->done.load(std::memory_order_acquire)) {
    // Closed: every job the main thread took is done, the others were dropped (never run).
    if (admin_jobs_closed_.load(std::memory_order_acquire))
      return job->done.load(std::memory_order_acquire);
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

// The admin thread's jobs not taken yet never run; those taken are done, or are reloads still
// running (their waiters answer "stopping"; the result goes to the job, which they share).
void Gateway::close_admin_jobs() {
  std::lock_guard lock(admin_jobs_mutex_);
  admin_jobs_closed_ = true;
  admin_jobs_.clear();
}

void Gateway::serve_admin_jobs() {
  std::vector<std::shared_ptr<AdminJob>> jobs, reloads;
  {
    std::lock_guard lock(admin_jobs_mutex_);
    if (admin_jobs_closed_) return;
    jobs.swap(admin_jobs_);
  }
  for (auto& job : jobs) {
    if (!job->work) {
      reloads.push_back(std::move(job));
      continue;
    }
    try {
      job->work();
    } catch (const std::exception& e) {
      spdlog::error("admin request failed on the main thread: {}", e.what());
    }
    job->done.store(true, std::memory_order_release);
  }
  // One reload answers every POST /reload waiting: each was made before it read the files.
  if (!reloads.empty()) request_reload("admin API", std::move(reloads));
}

void Gateway::request_stop() {
  stop_requested_ = true;
}

int Gateway::wait() {
  asio::io_context& control = *control_;
  asio::signal_set& signals = *signals_;
  bool stopping = false;
  std::function<void()> arm = [&] {
    signals.async_wait([&](const boost::system::error_code& ec, int sig) {
      if (ec) return;
      if (sig == SIGHUP) {
        request_reload("SIGHUP");
        arm();
        return;
      }
      if (sig == SIGUSR1) {
        spdlog::info("SIGUSR1: reopening log files");
        // Held: a POST /reload on the admin thread may replace the config meanwhile.
        const auto current = config();
        for (auto& reopen : current->on_reopen)
          reopen();
        arm();
        return;
      }
      spdlog::info("signal {}: draining", sig == SIGTERM ? "SIGTERM" : "SIGINT");
      stopping = true;
    });
  };
  arm();
  std::unique_ptr<ConfigWatcher> watcher;
  if (!options_.config_path.empty()) {
    watcher = std::make_unique<ConfigWatcher>(control, options_.config_path,
                                              [this] { request_reload("file change"); });
    if (auto error = watcher->start(); !error.empty()) {
      spdlog::warn("config file watch disabled ({}); SIGHUP and POST /reload still reload", error);
    }
  }
  // Certificate files are watched by their stamps (size, mtime, inode), once a second: renewed
  // files (certbot, cert-manager) reload the config as SIGHUP would; new connections get the
  // new certificates and open ones keep theirs. The same for the files a config section asked
  // to be watched (security::ReloadOnChange: upstream TLS CA bundles and client certificates). A
  // half-written pair fails to load, the old certificates keep serving, and the next change of
  // either file tries again.
  tls_files_changed();
  next_tls_check_ = std::chrono::steady_clock::now() + kTlsFileCheckInterval;
  if (worker_on_main_thread_) {
    run_worker_here(control, stopping);
    return 0;
  }
  while (!stopping && !stop_requested_) {
    control.run_for(std::chrono::milliseconds(100));
    check_tls_files();
    serve_admin_jobs();
  }
  signals.cancel();
  drain_and_stop();
  return 0;
}

// The worker's context runs here; a timer on it polls the control context (signals, the config
// watch) every 100 ms, as wait()'s loop does, and then drives the drain every 10 ms.
void Gateway::run_worker_here(asio::io_context& control, const bool& stopping) {
  asio::steady_timer tick(workers_->context(0));
  std::optional<std::chrono::steady_clock::time_point> drain_deadline;
  std::function<void()> arm = [&] {
    tick.expires_after(std::chrono::milliseconds(drain_deadline ? 10 : 100));
    tick.async_wait([&](const boost::system::error_code& ec) {
      if (ec) return;
      if (!drain_deadline) {
        control.poll();
        check_tls_files();
      }
      serve_admin_jobs();  // also while draining, as wait()'s drain does
      finish_reload(false);
      if (!drain_deadline && (stopping || stop_requested_)) {
        signals_->cancel();
        drain_deadline = begin_draining();
      }
      if (drain_deadline &&
          (open_connections() == 0 || std::chrono::steady_clock::now() >= *drain_deadline)) {
        return end_draining();  // stops the worker: run_first_here() returns
      }
      arm();
    });
  };
  arm();
  workers_->run_first_here();
}

void Gateway::check_tls_files() {
  if (std::chrono::steady_clock::now() < next_tls_check_) return;
  next_tls_check_ = std::chrono::steady_clock::now() + kTlsFileCheckInterval;
  if (tls_files_changed()) request_reload("certificate file change");
}

void Gateway::request_reload(const std::string& trigger,
                             std::vector<std::shared_ptr<AdminJob>> answers) {
  auto answer = [](const std::vector<std::shared_ptr<AdminJob>>& jobs, const ReloadResult& r) {
    for (const auto& job : jobs) {
      job->reload = r;
      job->done.store(true, std::memory_order_release);
    }
  };
  if (!worker_on_main_thread_) {
    answer(answers, reload(trigger));
    return;
  }
  if (reload_thread_.joinable()) {
    pending_reload_ = trigger;  // the files may have changed again: load them once more after
    for (auto& a : answers)
      pending_answers_.push_back(std::move(a));
    return;
  }
  reload_done_ = false;
  reload_thread_ = std::thread([this, trigger, answers = std::move(answers), answer] {
    answer(answers, reload(trigger));
    reload_done_ = true;
  });
}

void Gateway::finish_reload(bool wait) {
  if (!reload_thread_.joinable() || (!wait && !reload_done_)) return;
  reload_thread_.join();
  if (!pending_reload_) return;
  const std::string trigger = *pending_reload_;
  pending_reload_.reset();
  request_reload(trigger, std::exchange(pending_answers_, {}));
  if (wait) finish_reload(true);
}

bool Gateway::tls_files_changed() {
  std::map<std::string, security::FileStamp> now;
  for (const auto& s : servers_)
    if (auto tls = s->tls_context())
      for (const auto& path : tls->files())
        now[path] = security::stamp_of(path);
  if (const auto* files = config_cell_->current()->extras->get<security::ReloadOnChange>())
    for (const auto& path : files->paths)
      now[path] = security::stamp_of(path);
  const bool first = tls_file_stamps_.empty();
  const bool changed = now != tls_file_stamps_;
  tls_file_stamps_ = std::move(now);
  return changed && !first;
}

void Gateway::drain_and_stop() {
  const auto deadline = begin_draining();
  while (open_connections() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    serve_admin_jobs();
  }
  end_draining();
}

std::chrono::steady_clock::time_point Gateway::begin_draining() {
  draining_ = true;
  for (auto& s : servers_)
    s->begin_drain();
  return std::chrono::steady_clock::now() + config_cell_->current()->settings.drain_timeout;
}

std::size_t Gateway::open_connections() const {
  std::size_t n = 0;
  for (const auto& s : servers_)
    n += s->connections();
  return n;
}

void Gateway::end_draining() {
  close_admin_jobs();
  finish_reload(true);
  if (const auto open = open_connections(); open > 0)
    spdlog::warn("drain timeout: closing {} connections", open);
  else
    spdlog::info("drained; exiting");
  workers_->stop();
  if (admin_) admin_->stop();
}

}  // namespace sluice::gateway
