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

/* The line's start, {"ts":…,"level":…,"msg":…, each replaced by a member of FIELDS (may be
 * NULL) of the same name. Lines are written straight into a buffer with the compact JSON
 * writer: a request's log line is on the hot path of every answer. */
static void put_head(buf_t *line, log_level_t level, const char *msg, json_t *fields)
{
    char ts[32];
    clock_format_rfc3339(clock_now_ms(), ts, sizeof ts);
    const char *own[3][2] = {{"ts", ts}, {"level", names[level]}, {"msg", msg}};
    for (int i = 0; i < 3; i++) {
        buf_puts(line, i ? ",\"" : "{\"");
        buf_puts(line, own[i][0]);
        buf_puts(line, "\":");
        json_t *given = fields ? json_object_get(fields, own[i][0]) : NULL;
        if (given)
            jsonx_dump_buf(line, given);
        else
            jsonx_put_string(line, own[i][1], strlen(own[i][1]));
    }
}

/* End LINE, write it in one write(2) and free it. */
static void put_tail(buf_t *line)
{
    buf_puts(line, "}\n");
    ssize_t w = write(STDERR_FILENO, line->data, line->len);
    (void)w;
    buf_deinit(line);
}

static void put_key(buf_t *line, const char *key)
{
    buf_putc(line, ',');
    jsonx_put_string(line, key, strlen(key));
    buf_putc(line, ':');
}

/* Members of FIELDS named ts, level or msg replace the line's own. */
void log_event(log_level_t level, const char *msg, json_t *fields)
{
    if (level < min_level) {
        json_decref(fields);
        return;
    }
    buf_t line = BUF_INIT;
    put_head(&line, level, msg, fields);
    const char *key;
    json_t *v;
    json_object_foreach(fields, key, v)
    {
        if (strcmp(key, "ts") == 0 || strcmp(key, "level") == 0 || strcmp(key, "msg") == 0)
            continue; /* written above */
        put_key(&line, key);
        jsonx_dump_buf(&line, v);
    }
    json_decref(fields);
    put_tail(&line);
}

bool log_begin(log_line_t *l, log_level_t level, const char *msg)
{
    if (level < min_level)
        return false;
    l->b = (buf_t)BUF_INIT;
    put_head(&l->b, level, msg, NULL);
    return true;
}

void log_put_str(log_line_t *l, const char *key, const char *value)
{
    put_key(&l->b, key);
    jsonx_put_string(&l->b, value, strlen(value));
}

void log_put_int(log_line_t *l, const char *key, long long value)
{
    char num[24];
    put_key(&l->b, key);
    buf_append(&l->b, num, jsonx_format_int(value, num));
}

void log_put_real(log_line_t *l, const char *key, double value)
{
    char num[40];
    put_key(&l->b, key);
    buf_append(&l->b, num, jsonx_format_real(value, num));
}

void log_end(log_line_t *l)
{
    put_tail(&l->b);
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
