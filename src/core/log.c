/* log.c - see log.h. Lines are written with one write(2) so they never interleave. */
#include "core/log.h"

#include "core/buf.h"
#include "core/clock.h"
#include "core/jsonx.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static log_level_t min_level = LOG_INFO;
static const char *names[] = {"debug", "info", "warn", "error"};

void log_set_level(log_level_t level)
{
    min_level = level;
}

/* The line is written straight into a buffer with the compact JSON writer: a request's log
 * line is on the hot path of every answer. Members of FIELDS named ts, level or msg replace
 * the line's own. */
void log_event(log_level_t level, const char *msg, json_t *fields)
{
    if (level < min_level) {
        json_decref(fields);
        return;
    }
    char ts[32];
    clock_format_rfc3339(clock_now_ms(), ts, sizeof ts);
    /* The line's own members, each replaced by a member of FIELDS of the same name. */
    const char *own[3][2] = {{"ts", ts}, {"level", names[level]}, {"msg", msg}};
    buf_t line = BUF_INIT;
    for (int i = 0; i < 3; i++) {
        buf_puts(&line, i ? ",\"" : "{\"");
        buf_puts(&line, own[i][0]);
        buf_puts(&line, "\":");
        json_t *given = json_object_get(fields, own[i][0]);
        if (given)
            jsonx_dump_buf(&line, given);
        else
            jsonx_put_string(&line, own[i][1], strlen(own[i][1]));
    }
    const char *key;
    json_t *v;
    json_object_foreach(fields, key, v)
    {
        if (strcmp(key, "ts") == 0 || strcmp(key, "level") == 0 || strcmp(key, "msg") == 0)
            continue; /* written above */
        buf_putc(&line, ',');
        jsonx_put_string(&line, key, strlen(key));
        buf_putc(&line, ':');
        jsonx_dump_buf(&line, v);
    }
    json_decref(fields);
    buf_puts(&line, "}\n");
    ssize_t w = write(STDERR_FILENO, line.data, line.len);
    (void)w;
    buf_deinit(&line);
}

void log_msg(log_level_t level, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    log_event(level, msg, NULL);
}
