/* jsonx.c - see jsonx.h. */
#include "core/jsonx.h"

#include "core/xalloc.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Maximum nesting of TEXT, counted outside strings; stops counting past LIMIT. Jansson has a
 * compile-time depth limit of its own; we check ours first so the error names our setting. */
static int scan_depth(const char *text, size_t len, int limit, size_t *where)
{
    int depth = 0, max = 0;
    bool in_str = false;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = false;
            continue;
        }
        if (c == '"') {
            in_str = true;
        } else if (c == '[' || c == '{') {
            if (++depth > max) {
                max = depth;
                if (max > limit) {
                    *where = i;
                    return max;
                }
            }
        } else if (c == ']' || c == '}') {
            depth--;
        }
    }
    return max;
}

static void position_of(const char *text, size_t pos, int *line, int *col)
{
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < pos; i++) {
        if (text[i] == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

json_t *jsonx_parse(const char *text, size_t len, const jsonx_limits_t *limits, err_t *err)
{
    size_t max_bytes = limits ? limits->max_bytes : 0;
    int max_depth = limits && limits->max_depth > 0 ? limits->max_depth : JSONX_DEFAULT_DEPTH;

    if (max_bytes && len > max_bytes) {
        err_set_detail(err, BR_EINPUT_INVALID, json_pack("{s:I}", "max_bytes", (json_int_t)max_bytes),
                       "document is %zu bytes, more than the limit of %zu", len, max_bytes);
        return NULL;
    }
    size_t where = 0;
    if (scan_depth(text, len, max_depth, &where) > max_depth) {
        int line, col;
        position_of(text, where, &line, &col);
        err_set_detail(err, BR_EINPUT_INVALID,
                       json_pack("{s:i, s:i, s:I, s:i}", "line", line, "column", col, "position",
                                 (json_int_t)where, "max_depth", max_depth),
                       "line %d, column %d: nesting deeper than the limit of %d", line, col,
                       max_depth);
        return NULL;
    }

    size_t flags = JSON_DECODE_ANY | JSON_ALLOW_NUL;
    if (limits && limits->reject_duplicate_keys)
        flags |= JSON_REJECT_DUPLICATES;
    json_error_t je;
    json_t *v = json_loadb(text, len, flags, &je);
    if (!v) {
        int line = je.line > 0 ? je.line : 1, col = je.column > 0 ? je.column : 1;
        err_set_detail(err, BR_EINPUT_INVALID,
                       json_pack("{s:i, s:i, s:i}", "line", line, "column", col, "position",
                                 je.position),
                       "line %d, column %d: %s", line, col, je.text);
    }
    return v;
}

char *jsonx_dump(const json_t *v)
{
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    return s ? s : xstrdup("null");
}

const char *jsonx_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "object";
    case JSON_ARRAY: return "array";
    case JSON_STRING: return "string";
    case JSON_INTEGER: return "integer";
    case JSON_REAL: return "number";
    case JSON_TRUE:
    case JSON_FALSE: return "boolean";
    default: return "null";
    }
}

int jsonx_depth(const json_t *v)
{
    int max = 0;
    if (json_is_object(v)) {
        const char *k;
        json_t *child;
        json_object_foreach((json_t *)v, k, child)
        {
            int d = jsonx_depth(child);
            if (d > max)
                max = d;
        }
        return max + 1;
    }
    if (json_is_array(v)) {
        size_t i;
        json_t *child;
        json_array_foreach(v, i, child)
        {
            int d = jsonx_depth(child);
            if (d > max)
                max = d;
        }
        return max + 1;
    }
    return 0;
}

json_t *jsonx_get_path(json_t *root, const char *path)
{
    json_t *cur = root;
    const char *p = path;
    char key[512];
    while (cur && *p) {
        if (*p == '.') {
            p++;
            continue;
        }
        if (*p == '[') {
            p++;
            if (*p == '"') { /* ["key"] */
                p++;
                size_t n = 0;
                while (*p && *p != '"' && n < sizeof key - 1) {
                    if (*p == '\\' && p[1])
                        p++;
                    key[n++] = *p++;
                }
                key[n] = '\0';
                if (*p != '"')
                    return NULL;
                p++;
                if (*p != ']')
                    return NULL;
                p++;
                cur = json_is_object(cur) ? json_object_get(cur, key) : NULL;
            } else {
                char *end;
                long idx = strtol(p, &end, 10);
                if (end == p || *end != ']')
                    return NULL;
                p = end + 1;
                if (!json_is_array(cur))
                    return NULL;
                if (idx < 0)
                    idx += (long)json_array_size(cur);
                cur = idx >= 0 ? json_array_get(cur, (size_t)idx) : NULL;
            }
            continue;
        }
        size_t n = 0;
        while (*p && *p != '.' && *p != '[' && n < sizeof key - 1)
            key[n++] = *p++;
        key[n] = '\0';
        if (json_is_object(cur)) {
            cur = json_object_get(cur, key);
        } else if (json_is_array(cur)) {
            char *end;
            long idx = strtol(key, &end, 10);
            cur = (*end == '\0' && end != key && idx >= 0) ? json_array_get(cur, (size_t)idx) : NULL;
        } else {
            return NULL;
        }
    }
    return cur;
}

void jsonx_set_dotted(json_t *obj, const char *key, json_t *value)
{
    const char *dot = strchr(key, '.');
    if (!dot) {
        json_object_set_new(obj, key, value);
        return;
    }
    char *head = xstrndup(key, (size_t)(dot - key));
    json_t *child = json_object_get(obj, head);
    if (!json_is_object(child)) {
        child = json_object();
        json_object_set_new(obj, head, child);
    }
    free(head);
    jsonx_set_dotted(child, dot + 1, value);
}

bool jsonx_as_int(const json_t *v, long long *out)
{
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return true;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (d == floor(d) && d >= -9.2e18 && d <= 9.2e18) {
            *out = (long long)d;
            return true;
        }
    }
    return false;
}
