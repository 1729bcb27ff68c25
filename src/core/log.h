/* log.h - structured log lines (JSON, one per line) on standard error. */
#ifndef BRAID_CORE_LOG_H
#define BRAID_CORE_LOG_H

#include "core/buf.h"

#include <jansson.h>
#include <stdbool.h>

typedef enum { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR } log_level_t;

void log_set_level(log_level_t level);
/* Write {"ts", "level", "msg", ...FIELDS} to stderr. FIELDS (taken, may be NULL) is an object. */
void log_event(log_level_t level, const char *msg, json_t *fields);
void log_msg(log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A line built member by member, for lines on a hot path (one per HTTP request): the same
 * line log_event writes, without building a JSON object first.
 *
 *     log_line_t l;
 *     if (log_begin(&l, LOG_INFO, "request")) {
 *         log_put_str(&l, "method", m);
 *         log_put_int(&l, "status", 200);
 *         log_end(&l);
 *     }
 *
 * log_begin is false, and nothing is to be put or ended, when LEVEL is below the log's. */
typedef struct log_line {
    buf_t b;
} log_line_t;

bool log_begin(log_line_t *l, log_level_t level, const char *msg);
void log_put_str(log_line_t *l, const char *key, const char *value);
void log_put_int(log_line_t *l, const char *key, long long value);
void log_put_real(log_line_t *l, const char *key, double value);
/* Write the line and free it. */
void log_end(log_line_t *l);

#endif
