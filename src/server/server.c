/* server.c - the server's life and the request loop: libmicrohttpd set up with our limits,
 * each request taken from its head (path, token, route, permission, size) to its handler and
 * its answer, one log line and the metrics per request, and the shutdown on SIGTERM/SIGINT.
 *
 * Order of checks on a request's head, all before its body is read: the path is normalised
 * (400 bad_path), the token checked (401, on every path but /healthz, known or not), the
 * route matched (404, 405 with Allow), the role and an invoker's scopes checked (403), and
 * a declared Content-Length checked against max_body (413).
 */
#include "server/server.h"
#include "server/server_internal.h"

#include "core/clock.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/xalloc.h"
#include "vault/vault.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void server_config_defaults(server_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->listen = "127.0.0.1:8080";
    cfg->workers = 2;
    cfg->max_body = 10u << 20;
    /* libmicrohttpd zeroes a connection's whole memory after each request: at 64 KiB that was
     * 7% of the server's CPU under load. 16 KiB holds a head of up to ~15.5 KB (Node.js
     * admits 16 KiB by default); --max-header-bytes raises it. */
    cfg->max_header = 16u << 10;
    cfg->conn_timeout_s = 30;
    cfg->per_ip_limit = 64;
    cfg->max_inflight = 256;
    cfg->grace_ms = 30000;
}

/* libmicrohttpd unescapes the path before we see it; keep it as it came, so router.c decodes
 * it once and can refuse %2F and friends. Query keys and values stay encoded too (http.c
 * decodes them); libmicrohttpd has already turned '+' into ' ' there. */
static size_t no_unescape(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls;
    (void)c;
    return strlen(s);
}

/* Free REQ's body, wiping it first: a body may hold secrets (PUT /connections, a payload). */
static void body_free(request_t *req)
{
    if (req->body.data)
        vault_wipe(req->body.data, req->body.cap);
    buf_deinit(&req->body);
}

/* Append N bytes to REQ's body. Not buf_append: realloc would leave the old block, which may
 * hold secrets, in freed memory unwiped. The first chunk reserves the declared Content-Length
 * (already checked against max_body), so a body usually grows zero times. */
static void body_append(request_t *req, const char *data, size_t n)
{
    buf_t *b = &req->body;
    size_t need = b->len + n + 1;
    if (need > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 1024;
        const char *cl = b->cap ? NULL : http_header(req, MHD_HTTP_HEADER_CONTENT_LENGTH);
        unsigned long long declared = cl ? strtoull(cl, NULL, 10) : 0;
        if (declared && declared <= req->srv->cfg.max_body && declared + 1 > cap)
            cap = (size_t)declared + 1;
        while (cap < need)
            cap *= 2;
        size_t len = b->len;
        char *p = xmalloc(cap);
        if (len)
            memcpy(p, b->data, len);
        body_free(req);
        b->data = p;
        b->cap = cap;
        b->len = len;
    }
    memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static request_t *request_new(server_t *srv, struct MHD_Connection *conn, const char *method,
                              const char *url)
{
    request_t *req = XNEW(request_t);
    req->srv = srv;
    req->conn = conn;
    req->method = method;
    req->raw_path = xstrdup(url);
    req->start_us = clock_now_us();
    metrics_http_begin();
    atomic_fetch_add(&srv->requests, 1);
    return req;
}

/* Check the request's head; sets an error answer when it must stop here. */
static void check_head(request_t *req)
{
    server_t *srv = req->srv;
    const char *why = NULL;
    req->path = router_normalize(req->raw_path, &why);
    if (!req->path) {
        /* Even a malformed path tells nothing to a caller without a valid token. */
        if (auth_check(srv, req) < 0) {
            http_reply_error(req, 401, "unauthorized", NULL, "a valid bearer token is required");
            http_add_header(req, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
        } else {
            http_reply_error(req, 400, "bad_path", NULL, "%s", why);
        }
        return;
    }
    bool open = strcmp(req->path, "/healthz") == 0;
    if (!open && auth_check(srv, req) < 0) {
        http_reply_error(req, 401, "unauthorized", NULL, "a valid bearer token is required");
        http_add_header(req, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
        return;
    }
    route_match_t m;
    router_result_t res = router_match(req->method, req->path, &m);
    if (res == ROUTER_NO_PATH) {
        http_reply_error(req, 404, "not_found", NULL, "no route %s", req->path);
        return;
    }
    if (res == ROUTER_NO_METHOD) {
        http_reply_error(req, 405, "method_not_allowed", NULL, "%s is not allowed on %s",
                         req->method, req->path);
        http_add_header(req, MHD_HTTP_HEADER_ALLOW, m.allow);
        return;
    }
    req->route = m.route;
    req->params[0] = m.params[0];
    req->params[1] = m.params[1];
    if (req->route->perm != PERM_NONE &&
        (!router_role_allows(req->token.role, req->route->perm) ||
         (req->route->perm == PERM_EXECUTE && !auth_scope_allows(&req->token, req->params[0])))) {
        http_reply_error(req, 403, "forbidden", NULL, "this token may not %s %s", req->method,
                         req->path);
        return;
    }
    const char *cl = http_header(req, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl && strtoull(cl, NULL, 10) > srv->cfg.max_body)
        http_reply_error(req, 413, "body_too_large", NULL, "the body is larger than %zu bytes",
                         srv->cfg.max_body);
}

static enum MHD_Result queue_answer(request_t *req)
{
    if (!req->response)
        http_reply_error(req, 500, "internal", NULL, "the request got no answer");
    enum MHD_Result r = MHD_queue_response(req->conn, (unsigned)req->status, req->response);
    MHD_destroy_response(req->response);
    req->response = NULL;
    req->answered = true;
    return r;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    (void)version;
    server_t *srv = cls;
    request_t *req = *con_cls;
    if (!req) {
        req = request_new(srv, conn, method, url);
        *con_cls = req;
        check_head(req);
        return req->response ? queue_answer(req) : MHD_YES;
    }
    if (req->answered) { /* answered early: drop whatever body still comes */
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (req->suspended) /* resumed: the executor left the answer */
        return queue_answer(req);
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        req->body_seen += n;
        if (req->body_seen > srv->cfg.max_body) {
            req->too_large = true;
            body_free(req);
            /* A client that keeps sending far past the limit is not worth reading. */
            if (req->body_seen > 4 * srv->cfg.max_body + (1u << 20))
                return MHD_NO;
        } else {
            body_append(req, upload_data, n);
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (req->too_large) {
        http_reply_error(req, 413, "body_too_large", NULL, "the body is larger than %zu bytes",
                         srv->cfg.max_body);
        return queue_answer(req);
    }
    req->route->handler(req);
    if (req->suspended)
        return MHD_YES; /* the answer comes from another thread; do not touch req->response */
    return queue_answer(req);
}

/* One log line and the metrics per request, then free it. libmicrohttpd thread. */
static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    request_t *req = *con_cls;
    if (!req)
        return;
    *con_cls = NULL;
    atomic_fetch_sub(&req->srv->requests, 1);
    int status = req->status ? req->status : 499; /* the client left before an answer */
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && req->status == 0)
        status = 499;
    /* Whole microseconds over 1000: the shortest text of the logged value then has at most
     * three decimals, which the log's JSON writer formats without printf. */
    double ms = (double)(clock_now_us() - req->start_us) / 1000.0;
    const char *route = req->route ? req->route->pattern : "unknown";
    metrics_http_end(route, status, ms / 1000.0);
    log_line_t line;
    if (log_begin(&line, LOG_INFO, "request")) {
        log_put_str(&line, "method", req->method);
        log_put_str(&line, "path", req->path ? req->path : req->raw_path);
        log_put_str(&line, "route", route);
        log_put_int(&line, "status", status);
        log_put_real(&line, "duration_ms", ms);
        if (req->run_id[0])
            log_put_str(&line, "run_id", req->run_id);
        if (req->has_token)
            log_put_str(&line, "token_id", req->token.id);
        log_end(&line);
    }
    if (req->response)
        MHD_destroy_response(req->response);
    json_decref(req->token.scopes);
    body_free(req);
    free(req->params[0]);
    free(req->params[1]);
    free(req->path);
    free(req->raw_path);
    free(req);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && msg[n - 1] == '\n')
        msg[--n] = '\0';
    log_event(LOG_WARN, "http server", json_pack("{s:s}", "detail", msg));
}

/* "host:port" into ADDR; -1 on a bad address. IPv4 only for now. */
static int parse_listen(const char *listen, struct sockaddr_in *addr, char host[64])
{
    const char *colon = strrchr(listen, ':');
    if (!colon || colon == listen || (size_t)(colon - listen) >= 64)
        return -1;
    memcpy(host, listen, (size_t)(colon - listen));
    host[colon - listen] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || end == colon + 1 || port < 0 || port > 65535)
        return -1;
    memset(addr, 0, sizeof *addr);
    addr->sin_family = AF_INET;
    addr->sin_port = htons((uint16_t)port);
    if (strcmp(host, "localhost") == 0)
        snprintf(host, 64, "127.0.0.1");
    if (inet_pton(AF_INET, host, &addr->sin_addr) != 1)
        return -1;
    return 0;
}

/* See server.h. Main thread. */
int server_run(const server_config_t *cfg, engine_t *eng, store_t *st, err_t *err)
{
    server_t srv = {.cfg = *cfg, .eng = eng, .st = st};
    struct sockaddr_in addr;
    char host[64];
    int rc;
    if (parse_listen(cfg->listen, &addr, host) < 0)
        return err_set(err, BR_EUSAGE, "--listen wants IPV4:PORT, not '%s'", cfg->listen);
    if ((rc = vault_init(err)) < 0)
        return rc;
    if ((rc = auth_bootstrap(st, cfg->data_dir, err)) < 0)
        return rc;

    /* Every thread started from here on inherits the mask: only sigwait below sees them. */
    sigset_t sigs, old;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, &old);
    signal(SIGPIPE, SIG_IGN);

    pthread_mutex_init(&srv.auth_lock, NULL);
    srv.exec = executor_new(cfg->max_inflight, engine_loop(eng));
    if ((rc = engine_start(eng, err)) < 0)
        goto out;
    /* poll(2), not epoll: with epoll, libmicrohttpd 0.9.75 leaves a half-closed connection that
     * sent an invalid request line neither answered nor closed until its timeout (seen with
     * the thread pool); poll closes it at once. Each pool thread polls only its own
     * connections, so the cost stays small at the connection limits we set. */
    srv.daemon = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ITC |
            MHD_USE_ERROR_LOG,
        0, NULL, NULL, on_request, &srv, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, &srv,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)(cfg->workers > 0 ? cfg->workers : 1),
        /* Executions that only compute run on these threads, and sync calls recurse. */
        MHD_OPTION_THREAD_STACK_SIZE, (size_t)SERVER_STACK_BYTES,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, cfg->max_header, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)cfg->conn_timeout_s, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        (unsigned)cfg->per_ip_limit, MHD_OPTION_NOTIFY_COMPLETED, on_completed, &srv,
        MHD_OPTION_UNESCAPE_CALLBACK, no_unescape, &srv, MHD_OPTION_END);
    if (!srv.daemon) {
        rc = err_set(err, BR_EIO, "cannot listen on %s", cfg->listen);
        engine_stop(eng, 0);
        goto out;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(srv.daemon, MHD_DAEMON_INFO_BIND_PORT);
    int port = info ? info->port : ntohs(addr.sin_port);
    log_event(LOG_INFO, "listening", json_pack("{s:s, s:i}", "host", host, "port", port));
    if (cfg->on_listening)
        cfg->on_listening(cfg->listening_ctx, host, port);

    int sig = 0;
    sigwait(&sigs, &sig);
    log_event(LOG_INFO, "shutting down",
              json_pack("{s:s, s:I}", "signal", sig == SIGTERM ? "SIGTERM" : "SIGINT", "grace_ms",
                        (json_int_t)cfg->grace_ms));
    /* Stop accepting; connections already open are still served until they finish. */
    MHD_socket lsock = MHD_quiesce_daemon(srv.daemon);
    if (lsock != MHD_INVALID_SOCKET)
        close(lsock);
    int64_t deadline = clock_mono_ms() + cfg->grace_ms;
    int left = executor_wait_idle(srv.exec, deadline);
    /* Runs still going past the grace answer 202 with their ids; they stay running in the
     * store and a restart takes them over. */
    executor_timers_fire_all(srv.exec);
    /* An execution that just ended has resumed its connection, but the answer goes out from a
     * libmicrohttpd thread a moment later: stopping the daemon now would cut it off. */
    while (atomic_load(&srv.requests) > 0 && clock_mono_ms() < deadline + 1000)
        clock_sleep_ms(5);
    int64_t now = clock_mono_ms();
    engine_stop(eng, deadline > now ? deadline - now : 0);
    if (left > 0) {
        log_event(LOG_WARN, "executions still running after the grace period",
                  json_pack("{s:i}", "count", left));
        store_flush(st, NULL);
        /* Their threads are inside the engine and cannot be joined: leave without tearing
         * the store down under them. Their runs are recovered on the next start. */
        _exit(0);
    }
    MHD_stop_daemon(srv.daemon);
    store_flush(st, NULL);
    log_event(LOG_INFO, "stopped", NULL);
    rc = 0;
out:
    executor_free(srv.exec);
    auth_cache_free(&srv);
    pthread_mutex_destroy(&srv.auth_lock);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}
