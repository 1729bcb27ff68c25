/* log.h - structured log lines (JSON, one per line) on standard error. */
#ifndef BRAID_CORE_LOG_H
#define BRAID_CORE_LOG_H

#include <jansson.h>

typedef enum { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR } log_level_t;

void log_set_level(log_level_t level);
/* Write {"ts", "level", "msg", ...FIELDS} to stderr. FIELDS (taken, may be NULL) is an object. */
void log_event(log_level_t level, const char *msg, json_t *fields);
void log_msg(log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
