/* server.h - braid's HTTP API server: `braid serve` runs it until SIGTERM or SIGINT.
 *
 * The server owns libmicrohttpd (only src/server/ includes microhttpd.h), routing, tokens
 * and roles, request limits and the executor threads that run sync executions so that a
 * long run never ties up a connection thread. Everything else goes through the engine.
 */
#ifndef BRAID_SERVER_H
#define BRAID_SERVER_H

#include "core/err.h"
#include "engine/engine.h"
#include "store/store.h"

#include <stddef.h>
#include <stdint.h>

typedef struct server_config {
    const char *listen;     /* "host:port"; default "127.0.0.1:8080"; port 0 = any free port */
    int workers;            /* libmicrohttpd thread pool size; default 2 */
    size_t max_body;        /* request body bytes; default 10 MiB (413 past it) */
    size_t max_header;      /* memory per connection for the request head; default 16 KiB */
    int conn_timeout_s;     /* idle connections are closed after this; default 30 */
    int per_ip_limit;       /* connections from one address; default 64 */
    int max_inflight;       /* executions being run by the executor at once; default 256 */
    int64_t grace_ms;       /* on SIGTERM, how long running work may take to end; 30000 */
    const char *data_dir;   /* where admin.token is written; required */
    /* Called once the server listens, with the port it got (e.g. to print it). May be NULL. */
    void (*on_listening)(void *ctx, const char *host, int port);
    void *listening_ctx;
} server_config_t;

/* Fill CFG with the defaults above (data_dir NULL). */
void server_config_defaults(server_config_t *cfg);

/* Serve the API over ENG and ST (both borrowed) until SIGTERM or SIGINT: bootstrap the admin
 * token when no active admin token exists, start the engine's workers and libmicrohttpd,
 * then on the signal stop accepting, let requests and runs in progress finish within
 * grace_ms, leave queued and scheduled runs in the store, flush it and return 0. Returns a
 * negative code with ERR filled when the server cannot start. Call from the main thread, with
 * SIGTERM and SIGINT already blocked before any other thread (store writer, engine) was
 * started, so no thread but this one's sigwait receives them. */
int server_run(const server_config_t *cfg, engine_t *eng, store_t *st, err_t *err);

#endif
