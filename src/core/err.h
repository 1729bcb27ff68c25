/* err.h - braid's error codes and the err_t carrier.
 *
 * One X-macro table defines every error code: its C constant, the stable name users see
 * (in ERROR objects, API answers, exit messages), and whether the default retry policy
 * treats it as retryable. Functions that can fail return 0 or a negative BR_E* value and
 * put the human-readable detail into an optional err_t.
 */
#ifndef BRAID_CORE_ERR_H
#define BRAID_CORE_ERR_H

#include <jansson.h>
#include <stdbool.h>

/*     constant                name                   retryable */
#define BRAID_ERRORS(X)                                                                            \
    X(INPUT_INVALID, "input_invalid", false)                                                       \
    X(NOT_FOUND, "not_found", false)                                                               \
    X(VERSION_NOT_FOUND, "version_not_found", false)                                               \
    X(CALL_DEPTH_EXCEEDED, "call_depth_exceeded", false)                                           \
    X(DESCENDANT_LIMIT, "descendant_limit", false)                                                 \
    X(CONCURRENCY_LIMIT, "concurrency_limit", true)                                                \
    X(TIMEOUT, "timeout", true)                                                                    \
    X(NETWORK, "network", true)                                                                    \
    X(BLOCKED, "blocked", false)                                                                   \
    X(HTTP_STATUS, "http_status", false)                                                           \
    X(RESPONSE_TOO_LARGE, "response_too_large", false)                                             \
    X(CONNECTION_NOT_FOUND, "connection_not_found", false)                                         \
    X(SECRET_UNREADABLE, "secret_unreadable", false)                                               \
    X(FORBIDDEN, "forbidden", false)                                                               \
    X(EXPRESSION_ERROR, "expression_error", false)                                                 \
    X(SCRIPT_ERROR, "script_error", false)                                                         \
    X(SCRIPT_LIMIT, "script_limit", false)                                                         \
    X(CANCELLED, "cancelled", false)                                                               \
    X(INTERRUPTED, "interrupted", true)                                                            \
    X(STEP_LIMIT, "step_limit", false)                                                             \
    X(INTERNAL, "internal", false)                                                                 \
    X(INVALID_DEFINITION, "invalid_definition", false)                                             \
    X(USAGE, "usage", false)                                                                       \
    X(IO, "io", false)                                                                             \
    X(STORE, "store", false)                                                                       \
    X(LIMIT, "limit_exceeded", false)                                                              \
    X(CONFLICT, "conflict", false)                                                                 \
    X(ARCHIVED, "archived", false)

enum {
    BR_OK = 0,
#define X(c, name, retry) BR_E##c,
    BR_ERR_FIRST_ = -1000,
    BRAID_ERRORS(X)
#undef X
        BR_ERR_END_
};

/* The stable user-facing name of a code ("timeout"), or "internal" for an unknown code. */
const char *err_name(int code);
/* The code whose name is NAME, or 0 when NAME is not one of ours (e.g. a fail task's code). */
int err_code_by_name(const char *name);
/* Whether the default retry policy retries this code. */
bool err_retryable(int code);

typedef struct err {
    int code;       /* negative BR_E*, 0 when no error */
    char msg[512];  /* human-readable, never holds a secret */
    json_t *detail; /* owned; NULL when there is none */
} err_t;

/* Record an error into ERR (NULL-safe) and return CODE, so callers can `return err_set(...)`. */
int err_set(err_t *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Like err_set, also attaching DETAIL (taken). */
int err_set_detail(err_t *err, int code, json_t *detail, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void err_clear(err_t *err);
/* Move SRC into DST (DST cleared first); SRC is left empty. */
void err_move(err_t *dst, err_t *src);

#endif
