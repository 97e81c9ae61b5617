// Include before <httplib.h>: Debian's cpp-httplib is built with these options, and they change
// its class layouts, so whoever includes httplib.h must define them too (its pkg-config Cflags
// do). A translation unit that includes httplib without them disagrees with one that has them.
//
//   #include "core/httplib_options.hpp"
//   #include <httplib.h>
#pragma once

#ifndef CPPHTTPLIB_OPENSSL_SUPPORT
#define CPPHTTPLIB_OPENSSL_SUPPORT 1
#endif
#ifndef CPPHTTPLIB_ZLIB_SUPPORT
#define CPPHTTPLIB_ZLIB_SUPPORT 1
#endif
#ifndef CPPHTTPLIB_BROTLI_SUPPORT
#define CPPHTTPLIB_BROTLI_SUPPORT 1
#endif
