/* sluice plugin ABI — the C interface between the sluice host and a middleware plugin (a
 * shared object). A plugin exports two functions; the host calls the first to check the ABI
 * version and the second to let it register middleware types, whose instances the host then
 * drives through the C function pointers below.
 *
 *   SLUICE_PLUGIN_DECLARE_ABI();
 *   int sluice_plugin_register(const sluice_plugin_host* host) {
 *     return host->register_middleware(host->host_data, &my_type);
 *   }
 *
 * Why C: a C++ interface across shared objects (vtables, std::string, exceptions) is only
 * stable when the host and the plugin use the same compiler, standard library and flags. C
 * calls, plain structs and (pointer, length) strings are stable across all of them.
 *
 * Rules: every string the host hands out is valid until the hook returns; strings the plugin
 * passes in are copied. Hooks run on the request's worker thread and must not block it; a
 * plugin instance may be called from several workers at once. No exception may leave a hook.
 * Version: the host refuses a plugin whose sluice_plugin_abi_version() differs from its own
 * SLUICE_PLUGIN_ABI_VERSION. New functions are only appended to the tables, and `size` says how
 * large the table the host passed is. */
#ifndef SLUICE_PLUGIN_ABI_H
#define SLUICE_PLUGIN_ABI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SLUICE_PLUGIN_ABI_VERSION 1u

/* Exported symbol names. */
#define SLUICE_PLUGIN_ABI_SYMBOL "sluice_plugin_abi_version"
#define SLUICE_PLUGIN_REGISTER_SYMBOL "sluice_plugin_register"

/* A string that is not NUL-terminated. */
typedef struct sluice_str {
  const char* data;
  size_t size;
} sluice_str;

/* What pre_handle returns. */
typedef enum sluice_decision {
  SLUICE_NEXT = 0,    /* continue with the next middleware (or the handler) */
  SLUICE_RESPOND = 1, /* the response set through the exchange API is the answer */
  SLUICE_FAIL = -1    /* a failure: recover() of the chain runs, else the client gets a 500 */
} sluice_decision;

typedef struct sluice_exchange sluice_exchange; /* one request; opaque */
typedef struct sluice_config sluice_config;     /* a middleware's config map; opaque */

/* Request and response access, valid inside a hook for its exchange. */
typedef struct sluice_exchange_api {
  uint32_t size; /* sizeof(sluice_exchange_api) as the host compiled it */
  sluice_str (*request_method)(sluice_exchange* ex);
  sluice_str (*request_path)(sluice_exchange* ex);
  sluice_str (*request_header)(sluice_exchange* ex, sluice_str name); /* empty when absent */
  void (*request_set_header)(sluice_exchange* ex, sluice_str name, sluice_str value);
  sluice_str (*request_body)(sluice_exchange* ex);
  int (*response_status)(sluice_exchange* ex);
  void (*response_set_status)(sluice_exchange* ex, int status);
  sluice_str (*response_header)(sluice_exchange* ex, sluice_str name);
  void (*response_set_header)(sluice_exchange* ex, sluice_str name, sluice_str value);
  void (*response_add_header)(sluice_exchange* ex, sluice_str name, sluice_str value);
  sluice_str (*response_body)(sluice_exchange* ex);
  void (*response_set_body)(sluice_exchange* ex, sluice_str body, sluice_str content_type);
  /* Clears the response, fills it, and returns SLUICE_RESPOND for pre_handle to return. */
  int (*answer)(sluice_exchange* ex, int status, sluice_str content_type, sluice_str body);
  /* A JSON error body {"error","message","request_id"}; returns SLUICE_RESPOND. */
  int (*answer_error)(sluice_exchange* ex, int status, sluice_str error, sluice_str message);
  sluice_str (*request_id)(sluice_exchange* ex);
  sluice_str (*client_ip)(sluice_exchange* ex);
} sluice_exchange_api;

/* Config access, valid inside create(). Keys that are never read are reported as unknown. */
typedef struct sluice_config_api {
  uint32_t size;
  /* Returns 1 and sets *out when the key holds a scalar, 0 when it is absent. */
  int (*get_string)(sluice_config* cfg, const char* key, sluice_str* out);
  int64_t (*get_integer)(sluice_config* cfg, const char* key, int64_t fallback);
  /* Reports a config error at the key (file:line:column); create() then returns NULL. */
  void (*error)(sluice_config* cfg, const char* key, const char* message);
} sluice_config_api;

/* One middleware type. The struct and its strings must stay valid while the plugin is loaded
 * (a static const object is the usual choice). */
typedef struct sluice_middleware_type {
  const char* type_name; /* the `type:` used in the config */
  /* A new instance for one chain entry, or NULL after cfg errors. */
  void* (*create)(const char* instance_name, sluice_config* cfg);
  void (*destroy)(void* instance);
  /* Returns a sluice_decision. */
  int (*pre_handle)(void* instance, sluice_exchange* ex);
  /* May be NULL. `elapsed_ns`: time since the request entered the chain. */
  void (*post_handle)(void* instance, sluice_exchange* ex, uint64_t elapsed_ns);
} sluice_middleware_type;

enum sluice_log_level { SLUICE_LOG_DEBUG = 0, SLUICE_LOG_INFO = 1, SLUICE_LOG_WARN = 2 };

/* What the host passes to sluice_plugin_register. */
typedef struct sluice_plugin_host {
  uint32_t abi_version; /* SLUICE_PLUGIN_ABI_VERSION of the host */
  void* host_data;      /* pass back to the functions below */
  const sluice_exchange_api* exchange;
  const sluice_config_api* config;
  /* Returns 0 when the type was accepted; nonzero when refused (the load then fails). */
  int (*register_middleware)(void* host_data, const sluice_middleware_type* type);
  void (*log)(void* host_data, int level, const char* message);
} sluice_plugin_host;

typedef uint32_t (*sluice_plugin_abi_version_fn)(void);
/* Returns 0 on success; nonzero refuses the plugin. */
typedef int (*sluice_plugin_register_fn)(const sluice_plugin_host* host);

/* Defines the exported ABI version function; use once in the plugin. */
#define SLUICE_PLUGIN_DECLARE_ABI()                                                 \
  __attribute__((visibility("default"))) uint32_t sluice_plugin_abi_version(void) { \
    return SLUICE_PLUGIN_ABI_VERSION;                                               \
  }

#ifdef __cplusplus
}
#endif

#endif /* SLUICE_PLUGIN_ABI_H */
