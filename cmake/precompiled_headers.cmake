# Precompiled third-party headers for the library (SLUICE_PCH). Each is included by dozens of
# src/ files; together they are most of what a library file parses. Measured under ASan + UBSan
# at -O1 -g1: the library's files compile in 0.78x the CPU time with them (docs/RELIABILITY.md,
# "CI time"). The tests' files are not given them: their time is code generation, which a
# precompiled header does not save.
target_precompile_headers(sluice PRIVATE
  <algorithm> <atomic> <chrono> <functional> <map> <memory> <mutex> <optional> <string>
  <string_view> <thread> <vector>
  <boost/asio/io_context.hpp> <boost/asio/ip/tcp.hpp> <boost/asio/steady_timer.hpp>
  <boost/asio/ssl.hpp> <boost/beast/core.hpp> <boost/beast/http.hpp>
  <nlohmann/json.hpp> <prometheus/counter.h> <prometheus/gauge.h> <prometheus/histogram.h>
  <prometheus/registry.h> <spdlog/spdlog.h>)
# Asio's and Beast's implementation file includes all of them anyway.
set_source_files_properties(${PROJECT_SOURCE_DIR}/src/server/asio_impl.cpp PROPERTIES
  SKIP_PRECOMPILE_HEADERS ON)

# ccache caches a file compiled against a precompiled header only with these sloppiness options
# and -fpch-preprocess; set for this target's compiles only, ccache's own configuration is left
# as it is.
if(CCACHE_PROGRAM)
  set_target_properties(sluice PROPERTIES CXX_COMPILER_LAUNCHER
    "${CMAKE_COMMAND};-E;env;CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime;${CCACHE_PROGRAM}")
  target_compile_options(sluice PRIVATE -fpch-preprocess)
endif()
