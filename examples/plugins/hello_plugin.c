/* hello_plugin — a sluice middleware plugin written in plain C.
 *
 * Type `hello_header`: answers GET <path> (config `path`, default /hello-plugin) itself with
 * "hello from a plugin, <greeting>", and adds `X-Hello: <greeting>` to every response it sees
 * in post_handle (config `greeting`, default "world").
 *
 *   plugins:
 *     - { path: hello_plugin.so, sha256: <sha256sum of the file>, allow_types: [hello_header] }
 *   routes:
 *     - { name: r, middlewares: [{ type: hello_header, greeting: sluice }], handler: ... }
 *
 * Build variants used by the tests: -DHELLO_PLUGIN_ABI=99 claims another ABI version;
 * -DHELLO_PLUGIN_TYPE='"request_id"' registers a type name that already exists. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/plugin_abi.h"

#ifndef HELLO_PLUGIN_TYPE
#define HELLO_PLUGIN_TYPE "hello_header"
#endif

#ifdef HELLO_PLUGIN_ABI
__attribute__((visibility("default"))) uint32_t sluice_plugin_abi_version(void) {
  return HELLO_PLUGIN_ABI;
}
#else
SLUICE_PLUGIN_DECLARE_ABI()
#endif

static const sluice_exchange_api* api;

typedef struct hello {
  char greeting[64];
  char path[128];
  char body[128];
} hello;

static sluice_str str(const char* s) {
  sluice_str r = {s, strlen(s)};
  return r;
}

static void copy_setting(const sluice_config_api* cfg_api, sluice_config* cfg, const char* key,
                         char* out, size_t size, const char* fallback) {
  sluice_str v;
  if (cfg_api->get_string(cfg, key, &v)) {
    if (v.size >= size) {
      cfg_api->error(cfg, key, "too long");
      return;
    }
    memcpy(out, v.data, v.size);
    out[v.size] = '\0';
  } else {
    snprintf(out, size, "%s", fallback);
  }
}

static const sluice_config_api* config_api;

static void* hello_create(const char* instance_name, sluice_config* cfg) {
  (void)instance_name;
  hello* h = calloc(1, sizeof(hello));
  if (h == NULL) return NULL;
  copy_setting(config_api, cfg, "greeting", h->greeting, sizeof h->greeting, "world");
  copy_setting(config_api, cfg, "path", h->path, sizeof h->path, "/hello-plugin");
  if (h->path[0] != '/') {
    config_api->error(cfg, "path", "must start with /");
    free(h);
    return NULL;
  }
  snprintf(h->body, sizeof h->body, "hello from a plugin, %s\n", h->greeting);
  return h;
}

static void hello_destroy(void* instance) {
  free(instance);
}

static int hello_pre_handle(void* instance, sluice_exchange* ex) {
  hello* h = instance;
  sluice_str path = api->request_path(ex);
  if (path.size == strlen(h->path) && memcmp(path.data, h->path, path.size) == 0) {
    return api->answer(ex, 200, str("text/plain"), str(h->body));
  }
  return SLUICE_NEXT;
}

static void hello_post_handle(void* instance, sluice_exchange* ex, uint64_t elapsed_ns) {
  hello* h = instance;
  (void)elapsed_ns;
  api->response_set_header(ex, str("X-Hello"), str(h->greeting));
}

static const sluice_middleware_type hello_type = {
    HELLO_PLUGIN_TYPE, hello_create, hello_destroy, hello_pre_handle, hello_post_handle,
};

__attribute__((visibility("default"))) int sluice_plugin_register(const sluice_plugin_host* host) {
  if (host->abi_version != SLUICE_PLUGIN_ABI_VERSION) return 1;
  api = host->exchange;
  config_api = host->config;
  host->log(host->host_data, SLUICE_LOG_INFO, "hello_plugin registering " HELLO_PLUGIN_TYPE);
  return host->register_middleware(host->host_data, &hello_type);
}
