/* server_internal.h - what the files of src/server/ share: the request, the route table, the
 * router, the reply helpers, the auth cache and the executor. It does not include
 * microhttpd.h, so unit tests can use the router without the library's types. */
#ifndef BRAID_SERVER_INTERNAL_H
#define BRAID_SERVER_INTERNAL_H

#include "core/buf.h"
#include "core/err.h"
#include "core/uuid.h"
#include "server/server.h"

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct MHD_Connection;
struct MHD_Response;
struct MHD_Daemon;

/* ---- roles and permissions ---------------------------------------------------------------- */

typedef enum { ROLE_NONE, ROLE_ADMIN, ROLE_EDITOR, ROLE_VIEWER, ROLE_INVOKER } role_t;

typedef enum {
    PERM_NONE,       /* no token needed (/healthz) */
    PERM_READ,       /* read integrations, connectors, connections (never a secret value),
                        graph, metrics: viewer, editor, admin */
    PERM_PUBLISH,    /* publish and archive integrations, publish connectors, put and delete
                        connections: editor, admin */
    PERM_EXECUTE,    /* run integrations and triggers: admin; invoker within its scopes */
    PERM_RUN_READ,   /* read runs: viewer, editor, admin; invoker only the runs it started */
    PERM_RUN_CANCEL, /* cancel runs: editor, admin; invoker only the runs it started */
    PERM_ADMIN,      /* tokens: admin */
} perm_t;

role_t role_parse(const char *name);
/* Whether ROLE may use a route that needs PERM at all (an invoker's scope and ownership
 * checks come after, in the request). */
bool router_role_allows(role_t role, perm_t perm);

/* ---- requests ----------------------------------------------------------------------------- */

typedef struct server server_t;
typedef struct request request_t;
typedef void (*handler_fn)(request_t *req);

typedef struct route {
    const char *method;
    const char *pattern; /* segments; "{name}" takes one or more segments (an integration
                            name, which never holds "execute" or "versions"), any other
                            parameter ("{id}", "{slug}", "{n}") exactly one */
    handler_fn handler;
    perm_t perm;
} route_t;

/* The route table: the single source of truth for what the server answers. */
extern const route_t server_routes[];
extern const size_t server_route_count;

typedef struct token_info {
    char id[40];
    role_t role;
    json_t *scopes; /* owned array of glob strings */
} token_info_t;

struct request {
    server_t *srv;
    struct MHD_Connection *conn;
    const char *method;     /* borrowed from libmicrohttpd */
    char *raw_path;         /* as received, owned */
    char *path;             /* normalised, owned; NULL when the path was refused */
    const route_t *route;   /* NULL until matched */
    char *params[2];        /* decoded route parameters ({name}/{id}/{slug}, then {n}), owned */
    buf_t body;
    size_t body_seen;       /* bytes received, kept or not */
    bool too_large;
    bool has_token;
    token_info_t token;
    int64_t start_us;
    char run_id[UUID_STR_LEN]; /* for the log line, when the request made or named a run */
    /* The answer, set by the reply helpers and queued by the request loop. A suspended
     * request gets it from an executor thread, before that thread resumes the connection. */
    struct MHD_Response *response;
    int status;
    bool answered;   /* a response has been queued */
    bool suspended;
};

/* ---- router.c ----------------------------------------------------------------------------- */

/* The value of hex digit C, or -1. Pure. */
int router_hexval(char c);

/* Normalise RAW (a request path, still percent-encoded, without the query): decode it and
 * refuse anything that could be read two ways. Returns the decoded path (owned) or NULL with
 * *WHY (static text) saying what was refused: an encoded '/' or NUL, a bad escape, "." or ".."
 * segments, empty segments, a trailing slash, a path not starting with '/'. */
char *router_normalize(const char *raw, const char **why);

typedef enum { ROUTER_FOUND, ROUTER_NO_PATH, ROUTER_NO_METHOD } router_result_t;

typedef struct route_match {
    const route_t *route;
    char *params[2]; /* owned, free with route_match_deinit */
    char allow[64];  /* for ROUTER_NO_METHOD: "GET, PUT, DELETE" */
} route_match_t;

/* Match METHOD and the normalised PATH against the route table. */
router_result_t router_match(const char *method, const char *path, route_match_t *m);
void route_match_deinit(route_match_t *m);

/* ---- http.c ------------------------------------------------------------------------------- */

/* Every error answer: {"error": {"code", "message", "detail"?}} with STATUS. DETAIL taken. */
void http_reply_error(request_t *req, int status, const char *code, json_t *detail,
                      const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* The error answer for an err_t from the engine or the store, with the status its code has. */
void http_reply_err(request_t *req, const err_t *err);
/* The answer to a call that returned RC: 200 with DOC (taken; NULL allowed when RC < 0) on
 * success, ERR's error answer otherwise. ERR is cleared either way. */
void http_reply_result(request_t *req, int rc, json_t *doc, err_t *err);
/* A listing's answer: 200 {KEY: LIST} on success (RC >= 0), ERR's error answer otherwise. LIST
 * taken; ERR cleared. */
void http_reply_listing(request_t *req, int rc, const char *key, json_t *list, err_t *err);
int http_status_for(int code);
/* JSON answer; V borrowed. HEADER/VALUE (may be NULL) add one header. */
void http_reply_json(request_t *req, int status, const json_t *v, const char *header,
                     const char *value);
void http_reply_text(request_t *req, int status, const char *content_type, const char *text,
                     size_t len);
/* An answer without a body (204). */
void http_reply_empty(request_t *req, int status);
/* Add a header to the answer already set on REQ. */
void http_add_header(request_t *req, const char *name, const char *value);
/* Build a JSON response without a request (executor threads); V borrowed. */
struct MHD_Response *http_json_response(const json_t *v, const char *header, const char *value);
/* A JSON response from TEXT, a JSON document already written (its bytes are taken: TEXT is
 * left empty). Any thread. */
struct MHD_Response *http_json_text_response(buf_t *text);
/* The error answer for ERR as a response (executor threads); *STATUS set. */
struct MHD_Response *http_error_response(const err_t *err, int *status);
/* Query parameter KEY percent-decoded (owned, free()), or NULL when absent. */
char *http_query(request_t *req, const char *key);
/* Query parameter KEY as a whole number in [MIN, MAX], DEF when absent; replies 400 and
 * returns -1 when it is not. */
int http_query_long_or_reply(request_t *req, const char *key, long long min, long long max,
                             long long def, long long *out);
/* The body as JSON (owned); replies 400 input_invalid and returns NULL when it does not parse. */
json_t *http_body_json_or_reply(request_t *req);
/* Request headers lower-cased, without authorization and cookie (owned object). */
json_t *http_headers(request_t *req);
/* Query parameters as an object of strings (owned), and the query text rebuilt. */
json_t *http_params(request_t *req, buf_t *query_text);
/* Value of request header NAME, or NULL (borrowed from libmicrohttpd). */
const char *http_header(request_t *req, const char *name);

/* ---- auth.c ------------------------------------------------------------------------------- */

/* Check the request's Authorization header and fill REQ->token. 0, or -1 when it is missing or
 * not a valid, active token. */
int auth_check(server_t *srv, request_t *req);
/* Whether the token may execute NAME (an integration name or a trigger id). */
bool auth_scope_allows(const token_info_t *tok, const char *name);
/* Whether the token may see run REC (JSON record): invokers only their own runs. */
bool auth_may_see_run(const token_info_t *tok, const json_t *rec);
/* Create DATA/admin.token when no active admin token exists. */
int auth_bootstrap(store_t *st, const char *data_dir, err_t *err);
void auth_cache_free(server_t *srv);

/* ---- executor.c --------------------------------------------------------------------------- */

/* The stack of every server thread that runs integrations (executor and libmicrohttpd
 * threads): sync call chains recurse on the executing thread. */
#define SERVER_STACK_BYTES (8u << 20)

typedef struct executor executor_t;
typedef struct executor_timer {
    struct executor_timer *prev, *next;
    int64_t due_ms; /* monotonic */
    void (*fn)(void *arg);
    void *arg;
    bool armed;
} executor_timer_t;

/* A pool of threads (8 MiB stacks, made on demand), the outbound LOOP (borrowed: the
 * engine's) and one timer thread. At most MAX_THREADS jobs of the pool and the loop are in
 * flight at once. */
executor_t *executor_new(int max_threads, http_loop_t *loop);
/* Run FN(ARG) on a pool thread; -1 when MAX_THREADS jobs are already in flight. */
int executor_submit(executor_t *ex, void (*fn)(void *arg), void *arg);
/* Run FN(ARG) on a fiber of the outbound loop (net/http_loop.h): for a job that waits only
 * on outbound requests and sleeps. -1 when MAX_THREADS jobs are already in flight. When the
 * loop cannot start, on a pool thread. */
int executor_submit_fiber(executor_t *ex, void (*fn)(void *arg), void *arg);
/* Call T->fn(T->arg) on the timer thread at T->due_ms (monotonic), unless cancelled first. */
void executor_timer_add(executor_t *ex, executor_timer_t *t);
/* Disarm T; true when it had not fired (its callback will not run). */
bool executor_timer_cancel(executor_t *ex, executor_timer_t *t);
/* Fire every armed timer now (shutdown). */
void executor_timers_fire_all(executor_t *ex);
/* Wait until no job is in flight or DEADLINE_MS (monotonic) passes; the jobs left. */
int executor_wait_idle(executor_t *ex, int64_t deadline_ms);
/* Stop the threads (jobs must have finished) and free. NULL-safe. */
void executor_free(executor_t *ex);

/* ---- the server --------------------------------------------------------------------------- */

struct server {
    server_config_t cfg;
    engine_t *eng;
    store_t *st;
    struct MHD_Daemon *daemon;
    executor_t *exec;
    pthread_mutex_t auth_lock;
    void *auth_cache; /* strmap_t *: token id -> cached record */
    atomic_int requests; /* begun and not yet completed (answered, or the client gone) */
};

/* ---- api_versioned.c ---------------------------------------------------------------------- */

/* What the routes of versioned documents (integrations, connectors) share. A kind's handlers
 * pass its own calls; the path's first parameter is always the document's name. */

/* One version of a document as GET answers it: TEXT (owned) sent as it is stored, or else JSON
 * (owned) serialised; VERSION goes in Braid-Version. */
typedef struct api_doc {
    char *text;
    json_t *json;
    int version;
} api_doc_t;
/* Version VERSION (0 = latest) of NAME into *OUT (filled only on success). */
typedef int (*api_doc_get_cb)(server_t *srv, const char *name, int version, api_doc_t *out,
                              err_t *err);
/* NAME's versions: an owned array of {"version", "created_at"}; not_found for an unknown name. */
typedef int (*api_versions_cb)(server_t *srv, const char *name, json_t **out, err_t *err);
/* engine_publish and engine_connector_publish. */
typedef int (*api_publish_cb)(engine_t *eng, const char *text, size_t len, const char *name_hint,
                              json_t **result, diags_t *diags, err_t *err);

void api_versioned_get(request_t *req, api_doc_get_cb get);
void api_versioned_version_get(request_t *req, api_doc_get_cb get, const char *what);
void api_versioned_versions(request_t *req, api_versions_cb versions, const char *key);
void api_versioned_put(request_t *req, api_publish_cb publish, const char *invalid_msg);

/* Handlers (api_*.c), named after their routes. */
void api_execute_post(request_t *req);
void api_triggers_execute(request_t *req);
void api_integrations_list(request_t *req);
void api_integrations_get(request_t *req);
void api_integrations_versions(request_t *req);
void api_integrations_version_get(request_t *req);
void api_integrations_put(request_t *req);
void api_integrations_delete(request_t *req);
void api_runs_list(request_t *req);
void api_runs_get(request_t *req);
void api_runs_tree(request_t *req);
void api_runs_cancel(request_t *req);
void api_connectors_list(request_t *req);
void api_connectors_get(request_t *req);
void api_connectors_put(request_t *req);
void api_connectors_versions(request_t *req);
void api_connectors_version_get(request_t *req);
void api_connections_list(request_t *req);
void api_connections_get(request_t *req);
void api_connections_put(request_t *req);
void api_connections_delete(request_t *req);
void api_tokens_create(request_t *req);
void api_tokens_list(request_t *req);
void api_tokens_delete(request_t *req);
void api_graph_get(request_t *req);
void api_healthz_get(request_t *req);
void api_metrics_get(request_t *req);

/* Suspend / resume the request's connection (http.c wraps libmicrohttpd). */
void http_suspend(request_t *req);
/* Hand RESP with STATUS to a suspended REQ and resume it. Any thread. */
void http_resume_with(request_t *req, int status, struct MHD_Response *resp);

#endif
