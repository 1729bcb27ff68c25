/* template_eval.c - evaluating template expression trees: paths, operators and filters.
 *
 * Invariant: evaluation only reads the tree and the scope. Intermediate values are unboxed
 * (val_t), strings and containers are borrowed where possible, and a value owns memory only
 * when an operation made a new string; every failure is BR_EEXPRESSION_ERROR naming the
 * {{...}} that failed.
 */
#include "core/template_internal.h"

#include "core/jsonx.h"
#include "core/xalloc.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_QUOTED 200 /* bytes of the expression an error message quotes */

const char *const template_filter_names[F_DEFAULT + 1] = {
    [F_JSON] = "json",           [F_URLENCODE] = "urlencode", [F_BASE64] = "base64",
    [F_BASE64URL] = "base64url", [F_UPPER] = "upper",         [F_LOWER] = "lower",
    [F_LENGTH] = "length",       [F_DEFAULT] = "default",
};

/* See template_internal.h. Pure; any thread. */
size_t template_utf8_prefix(const char *s, size_t n, size_t max)
{
    if (n <= max)
        return n;
    while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
        max--;
    return max;
}

/* Set CX->err to BR_EEXPRESSION_ERROR: "{{expr}}: why" (the expression cut to MAX_QUOTED
 * bytes). Returns the code. Any thread, CX being its own. */
int template_eval_fail(ectx_t *cx, const char *fmt, ...)
{
    char why[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    size_t n = template_utf8_prefix(cx->text, cx->len, MAX_QUOTED);
    return err_set(cx->err, BR_EEXPRESSION_ERROR, "%.*s%s: %s", (int)n, cx->text,
                   cx->len > n ? "..." : "", why);
}

static int too_long(ectx_t *cx)
{
    return template_eval_fail(cx, "the rendered text is longer than %zu bytes", cx->max);
}

/* View J (borrowed, must outlive OUT; NULL reads as null) as a value owning nothing. */
void template_val_borrow(const json_t *j, val_t *out)
{
    switch (j ? json_typeof(j) : JSON_NULL) {
    case JSON_TRUE:
        out->type = V_BOOL;
        out->u.b = true;
        break;
    case JSON_FALSE:
        out->type = V_BOOL;
        out->u.b = false;
        break;
    case JSON_INTEGER:
        out->type = V_INT;
        out->u.i = json_integer_value(j);
        break;
    case JSON_REAL:
        out->type = V_REAL;
        out->u.r = json_real_value(j);
        break;
    case JSON_STRING:
        out->type = V_STR;
        out->u.s.p = json_string_value(j);
        out->u.s.n = json_string_length(j);
        out->u.s.own = NULL;
        break;
    case JSON_ARRAY:
    case JSON_OBJECT:
        out->type = V_JSON;
        out->u.j = j;
        break;
    default:
        out->type = V_NULL;
        break;
    }
}

/* Release what V owns (a string an operation made) and make it null. */
void template_val_free(val_t *v)
{
    if (v->type == V_STR)
        free(v->u.s.own);
    v->type = V_NULL;
}

/* Make OUT the string P (owned, N bytes, NUL-terminated). */
static void set_own(val_t *out, char *p, size_t n)
{
    out->type = V_STR;
    out->u.s.p = p;
    out->u.s.n = n;
    out->u.s.own = p;
}

static void set_bool(val_t *out, bool b)
{
    out->type = V_BOOL;
    out->u.b = b;
}


/* A new JSON value for V (borrowed), returned owned; containers are copied, never shared. */
json_t *template_val_to_json(const val_t *v)
{
    switch (v->type) {
    case V_BOOL:
        return json_boolean(v->u.b);
    case V_INT:
        return json_integer(v->u.i);
    case V_REAL:
        return json_real(v->u.r);
    /* Every string we hold is valid UTF-8: it came from jansson, from a literal the parser
     * decoded, or from joining, ASCII case mapping or encoding such strings. */
    case V_STR:
        return json_stringn_nocheck(v->u.s.p, v->u.s.n);
    case V_JSON:
        return jsonx_copy(v->u.j);
    default:
        return json_null();
    }
}

static const char *type_name(const val_t *v)
{
    switch (v->type) {
    case V_BOOL:
        return "boolean";
    case V_INT:
        return "integer";
    case V_REAL:
        return "number";
    case V_STR:
        return "string";
    case V_JSON:
        return json_is_array(v->u.j) ? "array" : "object";
    default:
        return "null";
    }
}

static bool truthy(const val_t *v)
{
    switch (v->type) {
    case V_BOOL:
        return v->u.b;
    case V_INT:
        return v->u.i != 0;
    case V_REAL:
        return v->u.r != 0.0;
    case V_STR:
        return v->u.s.n > 0;
    case V_JSON:
        return true;
    default:
        return false;
    }
}

/* Sign of I - R, exact even where converting I to a double would round. */
static int cmp_int_real(json_int_t i, double r)
{
    if (r >= 9223372036854775808.0)
        return -1;
    if (r < -9223372036854775808.0)
        return 1;
    double t = trunc(r); /* now exactly representable as an int64 */
    json_int_t ti = (json_int_t)t;
    if (i != ti)
        return i < ti ? -1 : 1;
    double frac = r - t;
    return frac > 0 ? -1 : frac < 0 ? 1 : 0;
}

static bool is_num(const val_t *v)
{
    return v->type == V_INT || v->type == V_REAL;
}

static int num_cmp(const val_t *a, const val_t *b)
{
    if (a->type == V_INT && b->type == V_INT)
        return a->u.i < b->u.i ? -1 : a->u.i > b->u.i;
    if (a->type == V_INT)
        return cmp_int_real(a->u.i, b->u.r);
    if (b->type == V_INT)
        return -cmp_int_real(b->u.i, a->u.r);
    return a->u.r < b->u.r ? -1 : a->u.r > b->u.r;
}

static int str_cmp(const val_t *a, const val_t *b)
{
    size_t n = a->u.s.n < b->u.s.n ? a->u.s.n : b->u.s.n;
    int c = n ? memcmp(a->u.s.p, b->u.s.p, n) : 0;
    if (c)
        return c < 0 ? -1 : 1;
    return a->u.s.n < b->u.s.n ? -1 : a->u.s.n > b->u.s.n;
}

static bool val_equal(const val_t *a, const val_t *b)
{
    if (is_num(a) && is_num(b))
        return num_cmp(a, b) == 0;
    if (a->type != b->type)
        return false;
    switch (a->type) {
    case V_NULL:
        return true;
    case V_BOOL:
        return a->u.b == b->u.b;
    case V_STR:
        return str_cmp(a, b) == 0;
    default:
        return template_values_equal(a->u.j, b->u.j);
    }
}

/* Whether A and B (borrowed; NULL reads as null) are equal as template `==` sees them: deep,
 * numbers by value (1 == 1.0, exact even past 2^53), object members in any order. Any thread. */
bool template_values_equal(const json_t *a, const json_t *b)
{
    if (a == b)
        return true;
    val_t va, vb;
    template_val_borrow(a, &va);
    template_val_borrow(b, &vb);
    if (va.type != V_JSON || vb.type != V_JSON)
        return val_equal(&va, &vb);
    if (json_typeof(a) != json_typeof(b))
        return false;
    if (json_is_array(a)) {
        size_t n = json_array_size(a);
        if (n != json_array_size(b))
            return false;
        for (size_t i = 0; i < n; i++)
            if (!template_values_equal(json_array_get(a, i), json_array_get(b, i)))
                return false;
        return true;
    }
    if (json_object_size(a) != json_object_size(b))
        return false;
    const char *key;
    size_t klen;
    json_t *child;
    /* jansson's iteration macros take a non-const object; iterating does not modify it. */
    json_object_keylen_foreach((json_t *)a, key, klen, child)
    {
        const json_t *other = json_object_getn(b, key, klen);
        if (!other || !template_values_equal(child, other))
            return false;
    }
    return true;
}

/* Truthiness of V (borrowed; NULL reads as null) for !, &&, || and ?: - false, null, 0, 0.0
 * and "" are false; everything else, empty arrays and objects too, is true. Any thread. */
bool template_truthy(const json_t *v)
{
    val_t tv;
    template_val_borrow(v, &tv);
    return truthy(&tv);
}

/* ---- compact JSON text ---- */

/* Whether EXTRA more bytes would take B past the limit. */
static bool over(const ectx_t *cx, const buf_t *b, size_t extra)
{
    return b->len > cx->max || extra > cx->max - b->len;
}

/* Append V to B as compact JSON (jsonx's writer), within CX->max bytes. */
static int dump_val(ectx_t *cx, buf_t *b, const val_t *v)
{
    char num[40];
    size_t n;
    switch (v->type) {
    case V_NULL:
        buf_puts(b, "null");
        break;
    case V_BOOL:
        buf_puts(b, v->u.b ? "true" : "false");
        break;
    case V_INT:
        n = jsonx_format_int(v->u.i, num);
        buf_append(b, num, n);
        break;
    case V_REAL:
        n = jsonx_format_real(v->u.r, num);
        buf_append(b, num, n);
        break;
    case V_STR:
        if (over(cx, b, v->u.s.n + 2))
            return too_long(cx);
        jsonx_put_string(b, v->u.s.p, v->u.s.n);
        break;
    default:
        if (jsonx_dump_buf_max(b, v->u.j, cx->max) < 0)
            return too_long(cx);
        break;
    }
    return over(cx, b, 0) ? too_long(cx) : 0;
}

/* Append V (borrowed) to B as interpolated text, within CX->max bytes. */
int template_val_append(ectx_t *cx, buf_t *b, const val_t *v)
{
    if (v->type == V_NULL)
        return 0;
    if (v->type != V_STR)
        return dump_val(cx, b, v);
    if (over(cx, b, v->u.s.n))
        return too_long(cx);
    buf_append(b, v->u.s.p, v->u.s.n);
    return 0;
}

/* ---- filters ---- */

/* The bytes filters work on: a string's own, anything else's compact JSON (kept in TMP). */
static int bytes_of(ectx_t *cx, const val_t *v, buf_t *tmp, const char **p, size_t *n)
{
    if (v->type == V_STR) {
        *p = v->u.s.p;
        *n = v->u.s.n;
        return 0;
    }
    int rc = dump_val(cx, tmp, v);
    *p = tmp->data;
    *n = tmp->len;
    return rc;
}

static bool unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

static int urlencode(ectx_t *cx, const char *p, size_t n, val_t *out)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += unreserved((unsigned char)p[i]) ? 1 : 3;
    if (len > cx->max)
        return too_long(cx);
    char *o = xmalloc(len + 1), *w = o;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (unreserved(c)) {
            *w++ = (char)c;
        } else {
            *w++ = '%';
            *w++ = hex[c >> 4];
            *w++ = hex[c & 15];
        }
    }
    *w = '\0';
    set_own(out, o, len);
    return 0;
}

/* RFC 4648 base64 of P: padded with the standard alphabet, unpadded with the URL one. */
static int base64(ectx_t *cx, const char *p, size_t n, bool url, val_t *out)
{
    const char *abc = url ? "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
                          : "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t rest = n % 3;
    size_t len = n / 3 * 4 + (rest == 0 ? 0 : url ? rest + 1 : 4);
    if (n / 3 > cx->max / 4 || len > cx->max)
        return too_long(cx);
    const unsigned char *s = (const unsigned char *)p;
    char *o = xmalloc(len + 1), *w = o;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        unsigned long t = (unsigned long)s[i] << 16 | (unsigned long)s[i + 1] << 8 | s[i + 2];
        *w++ = abc[t >> 18 & 63];
        *w++ = abc[t >> 12 & 63];
        *w++ = abc[t >> 6 & 63];
        *w++ = abc[t & 63];
    }
    if (rest) {
        unsigned long t =
            (unsigned long)s[i] << 16 | (rest == 2 ? (unsigned long)s[i + 1] << 8 : 0);
        *w++ = abc[t >> 18 & 63];
        *w++ = abc[t >> 12 & 63];
        if (rest == 2)
            *w++ = abc[t >> 6 & 63];
        else if (!url)
            *w++ = '=';
        if (!url)
            *w++ = '=';
    }
    *w = '\0';
    set_own(out, o, len);
    return 0;
}

static int apply_filter(ectx_t *cx, const expr_t *e, val_t *v)
{
    buf_t tmp = BUF_INIT;
    const char *p;
    size_t n;
    val_t res = {.type = V_NULL};
    int rc = 0;

    switch (e->filter) {
    case F_DEFAULT:
        if (v->type == V_NULL)
            template_val_borrow(e->u.k.arg, v);
        return 0;
    case F_JSON:
        if ((rc = dump_val(cx, &tmp, v)))
            goto out;
        n = tmp.len;
        set_own(&res, buf_steal(&tmp), n);
        break;
    case F_URLENCODE:
        if (!(rc = bytes_of(cx, v, &tmp, &p, &n)))
            rc = urlencode(cx, p, n, &res);
        break;
    case F_BASE64:
    case F_BASE64URL:
        if (!(rc = bytes_of(cx, v, &tmp, &p, &n)))
            rc = base64(cx, p, n, e->filter == F_BASE64URL, &res);
        break;
    case F_UPPER:
    case F_LOWER: {
        if (v->type != V_STR) {
            rc = template_eval_fail(cx, "filter '%s' needs a string, not %s",
                                    template_filter_names[e->filter], type_name(v));
            goto out;
        }
        char *o = xmalloc(v->u.s.n + 1);
        for (size_t i = 0; i < v->u.s.n; i++) {
            char c = v->u.s.p[i];
            if (e->filter == F_UPPER && c >= 'a' && c <= 'z')
                c = (char)(c - 'a' + 'A');
            else if (e->filter == F_LOWER && c >= 'A' && c <= 'Z')
                c = (char)(c - 'A' + 'a');
            o[i] = c;
        }
        o[v->u.s.n] = '\0';
        set_own(&res, o, v->u.s.n);
        break;
    }
    case F_LENGTH: {
        size_t count = 0;
        if (v->type == V_STR) {
            /* Code points: every byte that does not continue a UTF-8 sequence starts one. */
            for (size_t i = 0; i < v->u.s.n; i++)
                count += ((unsigned char)v->u.s.p[i] & 0xC0) != 0x80;
        } else if (v->type == V_JSON) {
            count = json_is_array(v->u.j) ? json_array_size(v->u.j) : json_object_size(v->u.j);
        } else {
            rc = template_eval_fail(cx, "filter 'length' needs a string, array or object, not %s",
                                    type_name(v));
            goto out;
        }
        res.type = V_INT;
        res.u.i = (json_int_t)count;
        break;
    }
    default:
        rc = template_eval_fail(cx, "unknown filter");
        goto out;
    }
    if (!rc) {
        template_val_free(v);
        *v = res;
        res.type = V_NULL;
    }
out:
    template_val_free(&res);
    buf_deinit(&tmp);
    return rc;
}

/* ---- operators ---- */

static const char *verb(int op)
{
    switch (op) {
    case E_ADD:
        return "add";
    case E_SUB:
        return "subtract";
    case E_MUL:
        return "multiply";
    case E_DIV:
        return "divide";
    default:
        return "take the remainder of";
    }
}

static int arith(ectx_t *cx, int op, const val_t *a, const val_t *b, val_t *out)
{
    if (op == E_ADD && a->type == V_STR && b->type == V_STR) {
        size_t n = a->u.s.n + b->u.s.n;
        if (a->u.s.n > cx->max || n > cx->max)
            return too_long(cx);
        char *o = xmalloc(n + 1);
        memcpy(o, a->u.s.p, a->u.s.n);
        memcpy(o + a->u.s.n, b->u.s.p, b->u.s.n);
        o[n] = '\0';
        set_own(out, o, n);
        return 0;
    }
    if (!is_num(a) || !is_num(b))
        return template_eval_fail(cx, "cannot %s %s and %s", verb(op), type_name(a), type_name(b));

    if (a->type == V_INT && b->type == V_INT) {
        json_int_t x = a->u.i, y = b->u.i, r;
        bool overflow = false;
        switch (op) {
        case E_ADD:
            overflow = __builtin_add_overflow(x, y, &r);
            break;
        case E_SUB:
            overflow = __builtin_sub_overflow(x, y, &r);
            break;
        case E_MUL:
            overflow = __builtin_mul_overflow(x, y, &r);
            break;
        case E_DIV:
            if (y == 0)
                return template_eval_fail(cx, "division by zero");
            if (x == LLONG_MIN && y == -1) {
                overflow = true;
                break;
            }
            if (x % y != 0) {
                out->type = V_REAL;
                out->u.r = (double)x / (double)y;
                return 0;
            }
            r = x / y;
            break;
        default:
            if (y == 0)
                return template_eval_fail(cx, "division by zero");
            r = y == -1 ? 0 : x % y; /* LLONG_MIN % -1 is undefined in C */
            break;
        }
        if (overflow)
            return template_eval_fail(cx, "integer overflow");
        out->type = V_INT;
        out->u.i = r;
        return 0;
    }

    double x = a->type == V_INT ? (double)a->u.i : a->u.r;
    double y = b->type == V_INT ? (double)b->u.i : b->u.r;
    double r;
    switch (op) {
    case E_ADD:
        r = x + y;
        break;
    case E_SUB:
        r = x - y;
        break;
    case E_MUL:
        r = x * y;
        break;
    case E_DIV:
        if (y == 0.0)
            return template_eval_fail(cx, "division by zero");
        r = x / y;
        break;
    default:
        if (y == 0.0)
            return template_eval_fail(cx, "division by zero");
        r = fmod(x, y);
        break;
    }
    if (!isfinite(r))
        return template_eval_fail(cx, "the result is not a finite number");
    out->type = V_REAL;
    out->u.r = r;
    return 0;
}

static int compare(ectx_t *cx, int op, const val_t *a, const val_t *b, val_t *out)
{
    int c;
    if (is_num(a) && is_num(b))
        c = num_cmp(a, b);
    else if (a->type == V_STR && b->type == V_STR)
        c = str_cmp(a, b);
    else
        return template_eval_fail(cx, "cannot compare %s and %s", type_name(a), type_name(b));
    switch (op) {
    case E_LT:
        set_bool(out, c < 0);
        break;
    case E_LE:
        set_bool(out, c <= 0);
        break;
    case E_GT:
        set_bool(out, c > 0);
        break;
    default:
        set_bool(out, c >= 0);
        break;
    }
    return 0;
}

/* ---- paths ---- */

static const json_t *root_value(const tmpl_scope_t *sc, int root)
{
    switch (1u << root) {
    case TMPL_VARS:
        return sc->vars;
    case TMPL_INPUT:
        return sc->input;
    case TMPL_TASKS:
        return sc->tasks;
    case TMPL_RUN:
        return sc->run;
    case TMPL_ITEM:
        return sc->item;
    case TMPL_INDEX:
        return sc->index;
    case TMPL_CONN:
        return sc->conn;
    default:
        return sc->secret;
    }
}

static const json_t *element(const json_t *arr, json_int_t i)
{
    if (!json_is_array(arr))
        return NULL;
    json_int_t size = (json_int_t)json_array_size(arr);
    if (i < 0)
        i += size;
    return i >= 0 && i < size ? json_array_get(arr, (size_t)i) : NULL;
}

/* CUR[K] for a key computed while rendering: integers (also integral reals) index arrays,
 * strings name object members, anything else finds nothing. */
static const json_t *member(const json_t *cur, const val_t *k)
{
    if (k->type == V_INT)
        return element(cur, k->u.i);
    if (k->type == V_REAL && k->u.r == trunc(k->u.r) && fabs(k->u.r) < 9.0e18)
        return element(cur, (json_int_t)k->u.r);
    if (k->type == V_STR && json_is_object(cur))
        return json_object_getn(cur, k->u.s.p, k->u.s.n);
    return NULL;
}

/* Resolve the path E in CX's scope; *OUT is borrowed from the scope, NULL when missing.
 * Fails only when a [expr] segment fails. Any thread. */
int template_path_get(const expr_t *e, ectx_t *cx, const json_t **out)
{
    const json_t *cur = root_value(cx->scope, e->root);
    for (size_t i = 0; i < e->u.path.nsegs; i++) {
        const seg_t *s = &e->u.path.segs[i];
        switch (s->kind) {
        case SEG_KEY:
            cur = json_is_object(cur) ? json_object_getn(cur, s->key, s->len) : NULL;
            break;
        case SEG_INDEX:
            cur = element(cur, s->index);
            break;
        default: {
            /* Evaluated even below a missing value, so a broken index expression fails the
             * same way whatever the data holds. */
            val_t k;
            int rc = template_expr_eval(s->expr, cx, &k);
            if (rc)
                return rc;
            cur = member(cur, &k);
            template_val_free(&k);
            break;
        }
        }
    }
    *out = cur;
    return 0;
}

/* Evaluate E (read-only) into *OUT (free with template_val_free). Returns 0 or
 * BR_EEXPRESSION_ERROR with CX->err set. Any thread. */
int template_expr_eval(const expr_t *e, ectx_t *cx, val_t *out)
{
    val_t a, b;
    int rc;

    out->type = V_NULL;
    switch (e->op) {
    case E_CONST:
        template_val_borrow(e->u.value, out);
        return 0;
    case E_PATH: {
        const json_t *j;
        if ((rc = template_path_get(e, cx, &j)))
            return rc;
        template_val_borrow(j, out);
        return 0;
    }
    case E_NOT:
        if ((rc = template_expr_eval(e->u.k.a, cx, &a)))
            return rc;
        set_bool(out, !truthy(&a));
        template_val_free(&a);
        return 0;
    case E_NEG:
        if ((rc = template_expr_eval(e->u.k.a, cx, &a)))
            return rc;
        if (a.type == V_INT && a.u.i != LLONG_MIN) {
            out->type = V_INT;
            out->u.i = -a.u.i;
        } else if (a.type == V_INT) {
            rc = template_eval_fail(cx, "integer overflow");
        } else if (a.type == V_REAL) {
            out->type = V_REAL;
            out->u.r = -a.u.r;
        } else {
            rc = template_eval_fail(cx, "cannot negate %s", type_name(&a));
        }
        template_val_free(&a);
        return rc;
    case E_AND:
    case E_OR: {
        if ((rc = template_expr_eval(e->u.k.a, cx, &a)))
            return rc;
        bool t = truthy(&a);
        template_val_free(&a);
        if (t == (e->op == E_OR)) {
            set_bool(out, t);
            return 0;
        }
        if ((rc = template_expr_eval(e->u.k.b, cx, &b)))
            return rc;
        set_bool(out, truthy(&b));
        template_val_free(&b);
        return 0;
    }
    case E_COND: {
        if ((rc = template_expr_eval(e->u.k.a, cx, &a)))
            return rc;
        bool t = truthy(&a);
        template_val_free(&a);
        return template_expr_eval(t ? e->u.k.b : e->u.k.c, cx, out);
    }
    case E_FILTER:
        if ((rc = template_expr_eval(e->u.k.a, cx, out)))
            return rc;
        if ((rc = apply_filter(cx, e, out)))
            template_val_free(out);
        return rc;
    default:
        break;
    }

    /* The binary operators. */
    if ((rc = template_expr_eval(e->u.k.a, cx, &a)))
        return rc;
    if ((rc = template_expr_eval(e->u.k.b, cx, &b))) {
        template_val_free(&a);
        return rc;
    }
    switch (e->op) {
    case E_EQ:
        set_bool(out, val_equal(&a, &b));
        break;
    case E_NE:
        set_bool(out, !val_equal(&a, &b));
        break;
    case E_LT:
    case E_LE:
    case E_GT:
    case E_GE:
        rc = compare(cx, e->op, &a, &b, out);
        break;
    default:
        rc = arith(cx, e->op, &a, &b, out);
        break;
    }
    template_val_free(&a);
    template_val_free(&b);
    return rc;
}
