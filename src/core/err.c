/* err.c - names and retry classes of braid's error codes, and the err_t helpers. */
#include "core/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const struct {
    const char *name;
    bool retryable;
} table[] = {
#define X(c, n, r) {n, r},
    BRAID_ERRORS(X)
#undef X
};

_Static_assert(sizeof(table) / sizeof(table[0]) == BR_ERR_END_ - BR_ERR_FIRST_ - 1,
               "error table and enum out of step");

const char *err_name(int code)
{
    int i = code - BR_ERR_FIRST_ - 1;
    if (i < 0 || i >= (int)(sizeof(table) / sizeof(table[0])))
        return "internal";
    return table[i].name;
}

int err_code_by_name(const char *name)
{
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
        if (strcmp(table[i].name, name) == 0)
            return BR_ERR_FIRST_ + 1 + (int)i;
    return 0;
}

bool err_retryable(int code)
{
    int i = code - BR_ERR_FIRST_ - 1;
    if (i < 0 || i >= (int)(sizeof(table) / sizeof(table[0])))
        return false;
    return table[i].retryable;
}

__attribute__((format(printf, 4, 0))) static int vset(err_t *err, int code, json_t *detail,
                                                     const char *fmt, va_list ap)
{
    if (!err) {
        json_decref(detail);
        return code;
    }
    json_decref(err->detail);
    err->code = code;
    err->detail = detail;
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    return code;
}

int err_set(err_t *err, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vset(err, code, NULL, fmt, ap);
    va_end(ap);
    return code;
}

int err_set_detail(err_t *err, int code, json_t *detail, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vset(err, code, detail, fmt, ap);
    va_end(ap);
    return code;
}

void err_clear(err_t *err)
{
    if (!err)
        return;
    json_decref(err->detail);
    err->detail = NULL;
    err->code = 0;
    err->msg[0] = '\0';
}

void err_move(err_t *dst, err_t *src)
{
    if (!dst) {
        err_clear(src);
        return;
    }
    err_clear(dst);
    *dst = *src;
    src->detail = NULL;
    src->code = 0;
    src->msg[0] = '\0';
}
