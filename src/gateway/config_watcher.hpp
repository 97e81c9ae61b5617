// ConfigWatcher — reloads when the config file changes (inotify). It watches the directory,
// not the file, because editors and config-management tools replace files by rename; changes
// are debounced so one save triggers one reload.
//
//   ConfigWatcher watcher(control_io, "/etc/sluice/sluice.yaml", [&] { gw.reload("file change");
//   }); watcher.start();
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <functional>
#include <string>

namespace sluice::gateway {

class ConfigWatcher {
 public:
  ConfigWatcher(boost::asio::io_context& io, std::string path, std::function<void()> on_change);
  ~ConfigWatcher();
  // Returns an error message (empty on success); a failure leaves SIGHUP and POST /reload.
  std::string start();

 private:
  void read();
  void changed();

  std::string directory_;
  std::string file_name_;
  std::function<void()> on_change_;
  boost::asio::posix::stream_descriptor descriptor_;
  boost::asio::steady_timer debounce_;
  char buffer_[8192];
};

}  // namespace sluice::gateway
