// Gateway — the `sluice run` process: loads the config, runs the public listeners on a worker
// pool and the admin listener on its own thread (with a file table of its own:
// gateway/admin/admin_thread.hpp), reloads on SIGHUP / POST /reload, and drains on SIGTERM /
// SIGINT.
//
//   Gateway gw({.config_path = "sluice.yaml"});
//   if (auto errors = gw.start(); !errors.empty()) return 1;
//   return gw.wait();
#pragma once
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <prometheus/collectable.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include "gateway/admin/admin_thread.hpp"
#include "gateway/config.hpp"
#include "gateway/router.hpp"
#include "security/watched_file.hpp"
#include "server/server.hpp"

namespace prometheus {
template <typename T>
class Family;
class Counter;
}  // namespace prometheus

namespace sluice::gateway {

struct GatewayOptions {
  std::string config_path;  // empty: the embedded default config
  std::string port_file;    // when set, bound addresses are written here after start
};

struct ReloadResult {
  bool ok = false;
  std::vector<std::string> errors;
  std::vector<std::string> restart_required;  // changed settings that a reload cannot apply
};

class Gateway {
 public:
  explicit Gateway(GatewayOptions options);
  ~Gateway();

  std::vector<std::string> start();
  int wait();

  // Control plane; callable from any thread that shares the workers' file table (what a reload
  // builds — upstream pools, Redis clients, queues, threads — must be made in that table).
  ReloadResult reload(const std::string& trigger);
  // For the admin thread, which has a table of its own: the reload runs where SIGHUP's would
  // (the main thread, or with one worker the reload thread it starts), the caller waits for it.
  // Its `errors` say so when the gateway stopped first.
  ReloadResult reload_for_admin();
  // Also for the admin thread: runs `work` on the main thread (it may act on the workers'
  // descriptors: a queue's files, a post to a queue's or a Redis client's io_context) and waits
  // for it. False when the gateway stopped before running it (then it never runs).
  bool run_for_admin(std::function<void()> work);
  std::shared_ptr<const LoadedConfig> config() const { return config_cell_->current(); }
  bool ready() const { return ready_.load() && !draining_.load(); }
  bool draining() const { return draining_.load(); }
  void request_stop();
  GatewayServices& services() { return services_; }
  const std::string& config_source() const { return options_.config_path; }

 private:
  std::map<std::string, security::FileStamp> tls_file_stamps_;  // by path (tls_files_changed)
  LoadOutcome load(const LoadedConfig* previous);
  void write_port_file();
  void drain_and_stop();
  // Draining in steps, for drain_and_stop() and for a worker running on the main thread.
  std::chrono::steady_clock::time_point begin_draining();
  std::size_t open_connections() const;
  void end_draining();
  // One worker: it runs on the main thread, which also polls the control context.
  void run_worker_here(boost::asio::io_context& control, const bool& stopping);
  // True when a certificate, key or client CA file of a TLS listener changed since the last
  // call (the first call only records them).
  bool tls_files_changed();
  // Reloads when tls_files_changed(), at most once per kTlsFileCheckInterval.
  void check_tls_files();
  std::chrono::steady_clock::time_point next_tls_check_{};
  // Reloads for the control plane's triggers (signals, file watches). With several workers the
  // control loop runs on the main thread, off the workers: the reload runs there. With one
  // worker the main thread is the worker, and a reload (reading the files, building every chain)
  // would hold its requests: it runs on a thread started for it, and the worker's tick joins it
  // (finish_reload) — the config is published by the reload itself, as with several workers.
  // `answers`: POST /reload requests waiting for this reload's result.
  struct AdminJob;
  void request_reload(const std::string& trigger,
                      std::vector<std::shared_ptr<AdminJob>> answers = {});
  // Hands the admin thread's jobs waiting in admin_jobs_ to this thread (the main thread).
  void serve_admin_jobs();
  void close_admin_jobs();  // from then on the admin thread's jobs are refused
  bool wait_for_admin_job(const std::shared_ptr<AdminJob>& job);
  std::mutex admin_jobs_mutex_;
  std::vector<std::shared_ptr<AdminJob>> admin_jobs_;
  std::atomic<bool> admin_jobs_closed_{false};              // the main thread serves no more
  std::vector<std::shared_ptr<AdminJob>> pending_answers_;  // for pending_reload_
  // Joins a finished reload thread (all of it with `wait`) and starts a reload requested
  // meanwhile.
  void finish_reload(bool wait);
  std::thread reload_thread_;
  std::atomic<bool> reload_done_{false};
  std::optional<std::string> pending_reload_;  // a trigger that arrived during a reload

  GatewayOptions options_;
  std::unique_ptr<boost::asio::io_context> control_;  // signals, config watch, main thread
  std::unique_ptr<boost::asio::signal_set> signals_;
  GatewayServices services_;
  std::unique_ptr<ConfigCell> config_cell_;
  std::mutex reload_mutex_;
  std::unique_ptr<server::WorkerPool> workers_;
  bool worker_on_main_thread_ = false;  // workers: 1 (see run_worker_here)
  std::vector<std::unique_ptr<server::Server>> servers_;
  GatewaySettings settings_at_start_;  // the listeners as bound at start
  std::unique_ptr<AdminThread> admin_;
  // Reads the listeners' connection counts at scrape time (the registry holds a weak_ptr).
  std::shared_ptr<prometheus::Collectable> connections_collector_;
  std::atomic<bool> ready_{false};
  std::atomic<bool> draining_{false};
  std::atomic<bool> stop_requested_{false};
  prometheus::Family<prometheus::Counter>* reloads_ = nullptr;
  prometheus::Family<prometheus::Counter>* tls_handshake_errors_ = nullptr;
  prometheus::Counter* tls_handshakes_full_ = nullptr;
  prometheus::Counter* tls_handshakes_resumed_ = nullptr;
  prometheus::Family<prometheus::Counter>* proxy_protocol_errors_ = nullptr;
};

}  // namespace sluice::gateway
