#include "gateway/config_watcher.hpp"

#include <sys/inotify.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

namespace sluice::gateway {

ConfigWatcher::ConfigWatcher(boost::asio::io_context& io, std::string path,
                             std::function<void()> on_change)
    : on_change_(std::move(on_change)), descriptor_(io), debounce_(io) {
  std::filesystem::path p = std::filesystem::absolute(path);
  directory_ = p.parent_path().string();
  file_name_ = p.filename().string();
}

ConfigWatcher::~ConfigWatcher() {
  boost::system::error_code ec;
  descriptor_.close(ec);
}

std::string ConfigWatcher::start() {
  int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0) return std::string("inotify_init1: ") + std::strerror(errno);
  if (::inotify_add_watch(fd, directory_.c_str(), IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE) < 0) {
    std::string error = "inotify_add_watch(" + directory_ + "): " + std::strerror(errno);
    ::close(fd);
    return error;
  }
  descriptor_.assign(fd);
  read();
  return {};
}

void ConfigWatcher::read() {
  descriptor_.async_read_some(boost::asio::buffer(buffer_),
                              [this](boost::system::error_code ec, std::size_t n) {
                                if (ec) return;
                                bool ours = false;
                                for (std::size_t off = 0; off + sizeof(inotify_event) <= n;) {
                                  inotify_event event;
                                  std::memcpy(&event, buffer_ + off, sizeof event);
                                  const char* name = buffer_ + off + sizeof(inotify_event);
                                  if (event.len > 0 && file_name_ == name) ours = true;
                                  off += sizeof(inotify_event) + event.len;
                                }
                                if (ours) changed();
                                read();
                              });
}

// A save often arrives as several events (create, write, rename): wait until they settle.
void ConfigWatcher::changed() {
  debounce_.expires_after(std::chrono::milliseconds(150));
  debounce_.async_wait([this](boost::system::error_code ec) {
    if (!ec) on_change_();
  });
}

}  // namespace sluice::gateway
