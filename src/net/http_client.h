/* http_client.h - braid's outbound HTTP client: every request an http or connector task makes.
 *
 * A request runs on the caller's thread with an easy handle from a pool; pooled handles keep
 * their idle keep-alive connections, so connections are reused across runs and an idle one
 * costs no thread. Each connection is checked by the address guard in libcurl's open-socket
 * callback: after name resolution, against the address actually dialled, on every redirect
 * hop. Only http and https, environment proxies ignored, the response capped as it arrives.
 */
#ifndef BRAID_NET_HTTP_CLIENT_H
#define BRAID_NET_HTTP_CLIENT_H

#include "core/err.h"
#include "net/guard.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct http_client http_client_t;

typedef struct http_client_config {
    int64_t connect_timeout_ms;  /* default 10000 */
    int64_t low_speed_bytes;     /* slower than this many bytes/s ... */
    int64_t low_speed_ms;        /* ... for this long fails with timeout */
    int max_idle_connections;    /* pooled handles, each keeping one idle connection; 64 */
} http_client_config_t;

/* A client over GUARD (taken; freed with the client). libcurl itself starts on the first
 * request. */
http_client_t *http_client_new(const http_client_config_t *cfg, guard_t *guard);
/* Close the pooled connections and free; no request may be in flight. NULL-safe. */
void http_client_free(http_client_t *c);

typedef struct http_header {
    const char *name;
    const char *value;
} http_header_t;

typedef struct http_request {
    const char *method;       /* upper case */
    const char *url;          /* http or https; query already in it */
    const http_header_t *headers; /* n_headers entries, sent as given */
    int n_headers;
    const char *username;     /* basic auth, or NULL */
    const char *password;
    const char *body;         /* NULL = no body */
    size_t body_len;
    int64_t timeout_ms;       /* whole request, redirects included */
    size_t max_response_bytes;
    bool follow_redirects;    /* at most 5 hops */
    /* Called (on the caller's thread) about every 50 ms while the request is in flight: a
     * non-zero BR_E* code (cancelled, timeout) abandons it with that code. NULL = never. */
    int (*should_stop)(void *ctx);
    void *stop_ctx;
} http_request_t;

typedef struct http_response {
    long status;      /* 0 when no response came */
    json_t *headers;  /* lower-case name -> value (repeated names joined with ", "); owned */
    char *body;       /* owned, NUL-terminated after body_len bytes; NULL when none */
    size_t body_len;
    char *content_type; /* owned or NULL */
    int redirects;    /* hops followed */
} http_response_t;

/* Send REQ and wait for its response. 0 with RESP filled, whatever the status; or a BR_E*
 * code with ERR: BR_EBLOCKED (the guard refused an address, or a scheme other than http and
 * https), BR_ETIMEOUT, BR_ERESPONSE_TOO_LARGE, BR_ENETWORK (resolution, connection, TLS,
 * protocol, too many redirects), BR_ECANCELLED, BR_EINPUT_INVALID (a malformed URL or header).
 * RESP may hold a status and headers even on error. Any thread. */
int http_perform(http_client_t *c, const http_request_t *req, http_response_t *resp, err_t *err);
void http_response_deinit(http_response_t *resp);

/* Check URL (NUL-terminated) and add QUERY (object of strings/scalars; may be NULL) to it,
 * percent-encoded. Returns the new URL (owned) or NULL with ERR: BR_EINPUT_INVALID when it is
 * not a URL, BR_EBLOCKED when its scheme is not http or https. */
char *http_url_with_query(const char *url, const json_t *query, err_t *err);

#endif
