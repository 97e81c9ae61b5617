// OtlpCollector — a test OTLP/HTTP JSON collector on loopback: keeps every span POSTed to
// /v1/traces (and the last resource), for tests of the tracing observer and the binary.
//
//   OtlpCollector collector;
//   ... tracing endpoint: collector.url() ...
//   auto spans = collector.spans();  // nlohmann::json objects, in arrival order
//   OtlpCollector tls(cert, key);    // https://localhost:PORT (TLS with that certificate)
#pragma once

#include "core/httplib_options.hpp"  // before httplib.h

#include <httplib.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

namespace sluice::testing {

class OtlpCollector {
 public:
  OtlpCollector() : server_(std::make_unique<httplib::Server>()) { start(); }
  // Over TLS: the certificate and key files (PEM); url() is then https://localhost:PORT.
  OtlpCollector(const std::string& cert_file, const std::string& key_file)
      : server_(std::make_unique<httplib::SSLServer>(cert_file.c_str(), key_file.c_str())),
        tls_(true) {
    start();
  }
  ~OtlpCollector() {
    server_->stop();
    thread_.join();
  }
  OtlpCollector(const OtlpCollector&) = delete;
  OtlpCollector& operator=(const OtlpCollector&) = delete;

  int port() const { return port_; }
  std::string url() const {
    return tls_ ? "https://localhost:" + std::to_string(port_)
                : "http://127.0.0.1:" + std::to_string(port_);
  }
  std::vector<nlohmann::json> spans() {
    std::lock_guard lock(mu_);
    return spans_;
  }
  nlohmann::json resource() {
    std::lock_guard lock(mu_);
    return resource_;
  }

 private:
  void start() {
    server_->Post("/v1/traces", [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard lock(mu_);
      const auto body = nlohmann::json::parse(req.body);
      for (const auto& rs : body["resourceSpans"]) {
        resource_ = rs["resource"];
        for (const auto& ss : rs["scopeSpans"])
          for (const auto& s : ss["spans"])
            spans_.push_back(s);
      }
      res.set_content("{}", "application/json");
    });
    port_ = server_->bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_->listen_after_bind(); });
    // stop() before the accept loop runs would leave listen_after_bind running forever.
    while (!server_->is_running())
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }

  std::unique_ptr<httplib::Server> server_;
  bool tls_ = false;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::vector<nlohmann::json> spans_;
  nlohmann::json resource_;
};

// The value of a span attribute ({"stringValue": ...} etc.), or null.
inline nlohmann::json span_attribute(const nlohmann::json& span, const std::string& key) {
  for (const auto& a : span["attributes"])
    if (a["key"] == key) return a["value"];
  return nullptr;
}

}  // namespace sluice::testing
