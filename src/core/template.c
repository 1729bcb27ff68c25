/* template.c - compiling JSON values whose strings hold {{ }} expressions, and rendering them.
 *
 * Compiling copies the source and builds a tree with its shape: subtrees without expressions
 * collapse into one constant node rendered by a deep copy; a string that is one {{...}} becomes
 * a typed expression; any other string with expressions becomes literal spans and expressions
 * joined as text. Spans point into the template's own copy of the source. Invariant: nothing
 * writes to a template after compile, so any number of threads may render it at once.
 */
#include "core/template.h"

#include "core/buf.h"
#include "core/jsonx.h"
#include "core/template_internal.h"
#include "core/xalloc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_EXCERPT 120 /* bytes of a faulty expression quoted in a compile error */

enum node_kind {
    N_CONST,  /* no expression below: render a deep copy of VALUE */
    N_EXPR,   /* a string that is exactly one {{...}}: PARTS[0], result keeps its JSON type */
    N_TEXT,   /* a string mixing literal text and expressions: N parts joined */
    N_ARRAY,  /* N items, some not constant */
    N_OBJECT, /* N members, some not constant */
};

typedef struct part {
    const char *text; /* a literal: its LEN bytes; an expression: its {{...}} source */
    size_t len;
    expr_t *expr; /* owned; NULL for a literal */
} part_t;

typedef struct node node_t;
typedef struct member member_t;

struct node {
    uint8_t kind; /* N_* */
    size_t n;     /* parts, items or members */
    union {
        json_t *value;     /* N_CONST: owned */
        part_t *parts;     /* N_EXPR (one), N_TEXT */
        node_t *items;     /* N_ARRAY */
        member_t *members; /* N_OBJECT */
    } u;
};

struct member {
    const char *key; /* KLEN bytes, inside the template's source */
    size_t klen;
    node_t node;
};

struct template
{
    json_t *src; /* owned copy of the source; the tree's spans point into it */
    node_t root;
    unsigned roots; /* TMPL_* read by some expression */
    bool constant;  /* rendering yields a copy of SRC */
};

/* Where in the source the compile walk is, innermost first, for error pointers. */
typedef struct frame {
    const struct frame *up;
    const char *key; /* object member name (KLEN bytes), or NULL for array element INDEX */
    size_t klen;
    size_t index;
} frame_t;

typedef struct cctx {
    unsigned allowed;
    unsigned used;
    err_t *err;
} cctx_t;

static void node_free(node_t *n)
{
    switch (n->kind) {
    case N_CONST:
        json_decref(n->u.value);
        break;
    case N_EXPR:
    case N_TEXT:
        for (size_t i = 0; i < n->n; i++)
            template_expr_free(n->u.parts[i].expr);
        free(n->u.parts);
        break;
    case N_ARRAY:
        for (size_t i = 0; i < n->n; i++)
            node_free(&n->u.items[i]);
        free(n->u.items);
        break;
    default:
        for (size_t i = 0; i < n->n; i++)
            node_free(&n->u.members[i].node);
        free(n->u.members);
        break;
    }
    n->kind = N_CONST;
    n->u.value = NULL;
}

/* ---- compile errors ---- */

/* RFC 6901 pointer of F: "/a/0", with ~ as ~0 and / as ~1. */
static void put_pointer(buf_t *b, const frame_t *f)
{
    if (!f)
        return;
    put_pointer(b, f->up);
    buf_putc(b, '/');
    if (!f->key) {
        buf_printf(b, "%zu", f->index);
        return;
    }
    for (size_t i = 0; i < f->klen; i++) {
        if (f->key[i] == '~')
            buf_puts(b, "~0");
        else if (f->key[i] == '/')
            buf_puts(b, "~1");
        else
            buf_putc(b, f->key[i]);
    }
}

/* Report PE, found in the {{ at OPEN of string S (N bytes) at AT, as an invalid definition. */
static int compile_fail(cctx_t *c, const frame_t *at, const char *s, size_t n, size_t open,
                        const perr_t *pe)
{
    /* Quote from the {{ to the first }} at or after the fault, or to the end. */
    size_t from = pe->pos > open + 2 ? pe->pos : open + 2, end = n;
    for (size_t i = from; i + 1 < n; i++) {
        if (s[i] == '}' && s[i + 1] == '}') {
            end = i + 2;
            break;
        }
    }
    size_t len = template_utf8_prefix(s + open, end - open, MAX_EXCERPT);

    buf_t ptr = BUF_INIT;
    put_pointer(&ptr, at);
    json_t *detail = json_object();
    json_object_set_new(detail, "pointer", json_stringn(ptr.data ? ptr.data : "", ptr.len));
    json_object_set_new(detail, "position", json_integer((json_int_t)pe->pos));
    buf_deinit(&ptr);
    return err_set_detail(c->err, BR_EINVALID_DEFINITION, detail, "\"%.*s%s\": %s at offset %zu",
                          (int)len, s + open, end - open > len ? "..." : "", pe->msg, pe->pos);
}

/* ---- compiling ---- */

static void add_part(part_t **parts, size_t *n, size_t *cap, const char *text, size_t len,
                     expr_t *e)
{
    if (!len && !e)
        return;
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 4;
        *parts = xrealloc(*parts, *cap * sizeof **parts);
    }
    (*parts)[(*n)++] = (part_t){text, len, e};
}

static void free_parts(part_t *parts, size_t n)
{
    for (size_t i = 0; i < n; i++)
        template_expr_free(parts[i].expr);
    free(parts);
}

/* Compile the string STR (inside the template's source) into OUT. *EXACT tells whether OUT
 * renders exactly STR. */
static int compile_string(cctx_t *c, json_t *str, const frame_t *at, node_t *out, bool *exact)
{
    const char *s = json_string_value(str);
    size_t n = json_string_length(str);
    part_t *parts = NULL;
    size_t np = 0, cap = 0, lit = 0, i = 0;
    bool escaped = false, has_expr = false;

    while (i + 1 < n) {
        if (s[i] == '\\' && i + 2 < n && s[i + 1] == '{' && s[i + 2] == '{') {
            /* \{{ : drop the backslash, keep the braces as text. */
            add_part(&parts, &np, &cap, s + lit, i - lit, NULL);
            lit = i + 1;
            i += 3;
            escaped = true;
            continue;
        }
        if (s[i] != '{' || s[i + 1] != '{') {
            i++;
            continue;
        }
        add_part(&parts, &np, &cap, s + lit, i - lit, NULL);
        perr_t pe;
        size_t end = 0;
        expr_t *e = template_expr_parse(s, n, i, c->allowed, &c->used, &end, &pe);
        if (!e) {
            free_parts(parts, np);
            return compile_fail(c, at, s, n, i, &pe);
        }
        add_part(&parts, &np, &cap, s + i, end - i, e);
        has_expr = true;
        i = lit = end;
    }
    add_part(&parts, &np, &cap, s + lit, n - lit, NULL);

    if (!has_expr) {
        *exact = !escaped;
        out->kind = N_CONST;
        if (escaped) {
            buf_t b = BUF_INIT;
            for (size_t k = 0; k < np; k++)
                buf_append(&b, parts[k].text, parts[k].len);
            out->u.value = json_stringn_nocheck(b.data ? b.data : "", b.len);
            buf_deinit(&b);
        } else {
            out->u.value = json_incref(str);
        }
        free_parts(parts, np);
        return 0;
    }
    *exact = false;
    if (np == 1 && parts[0].expr->op == E_CONST) {
        /* "{{1 + 2}}": folded while parsing, so render a copy. */
        out->kind = N_CONST;
        out->u.value = json_incref(parts[0].expr->u.value);
        free_parts(parts, np);
        return 0;
    }
    out->kind = np == 1 ? N_EXPR : N_TEXT;
    out->n = np;
    out->u.parts = parts;
    return 0;
}

static int compile_node(cctx_t *c, json_t *v, const frame_t *at, node_t *out, bool *exact);

static int compile_array(cctx_t *c, json_t *v, const frame_t *at, node_t *out, bool *exact)
{
    size_t n = json_array_size(v);
    node_t *items = n ? xcalloc(n, sizeof *items) : NULL;
    bool all_const = true, all_exact = true;
    for (size_t i = 0; i < n; i++) {
        frame_t f = {at, NULL, 0, i};
        bool ex;
        int rc = compile_node(c, json_array_get(v, i), &f, &items[i], &ex);
        if (rc) {
            for (size_t k = 0; k < i; k++)
                node_free(&items[k]);
            free(items);
            return rc;
        }
        all_const = all_const && items[i].kind == N_CONST;
        all_exact = all_exact && ex;
    }
    *exact = all_const && all_exact;
    if (!all_const) {
        out->kind = N_ARRAY;
        out->n = n;
        out->u.items = items;
        return 0;
    }
    out->kind = N_CONST;
    if (all_exact) {
        out->u.value = json_incref(v);
    } else {
        out->u.value = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append(out->u.value, items[i].u.value);
    }
    for (size_t i = 0; i < n; i++)
        node_free(&items[i]);
    free(items);
    return 0;
}

static int compile_object(cctx_t *c, json_t *v, const frame_t *at, node_t *out, bool *exact)
{
    size_t n = json_object_size(v), i = 0;
    member_t *members = n ? xcalloc(n, sizeof *members) : NULL;
    bool all_const = true, all_exact = true;
    const char *key;
    size_t klen;
    json_t *child;
    json_object_keylen_foreach(v, key, klen, child)
    {
        frame_t f = {at, key, klen, 0};
        bool ex;
        members[i].key = key;
        members[i].klen = klen;
        int rc = compile_node(c, child, &f, &members[i].node, &ex);
        if (rc) {
            for (size_t k = 0; k < i; k++)
                node_free(&members[k].node);
            free(members);
            return rc;
        }
        all_const = all_const && members[i].node.kind == N_CONST;
        all_exact = all_exact && ex;
        i++;
    }
    *exact = all_const && all_exact;
    if (!all_const) {
        out->kind = N_OBJECT;
        out->n = n;
        out->u.members = members;
        return 0;
    }
    out->kind = N_CONST;
    if (all_exact) {
        out->u.value = json_incref(v);
    } else {
        out->u.value = json_object();
        for (i = 0; i < n; i++)
            json_object_setn_nocheck(out->u.value, members[i].key, members[i].klen,
                                     members[i].node.u.value);
    }
    for (i = 0; i < n; i++)
        node_free(&members[i].node);
    free(members);
    return 0;
}

static int compile_node(cctx_t *c, json_t *v, const frame_t *at, node_t *out, bool *exact)
{
    memset(out, 0, sizeof *out);
    switch (json_typeof(v)) {
    case JSON_STRING:
        return compile_string(c, v, at, out, exact);
    case JSON_ARRAY:
        return compile_array(c, v, at, out, exact);
    case JSON_OBJECT:
        return compile_object(c, v, at, out, exact);
    default:
        out->kind = N_CONST;
        out->u.value = json_incref(v);
        *exact = true;
        return 0;
    }
}

/* Compile SRC, taken (the template keeps it). */
static int compile_owned(json_t *src, unsigned allowed, template_t **out, err_t *err)
{
    cctx_t c = {.allowed = allowed, .used = 0, .err = err};
    template_t *t = XNEW(template_t);
    t->src = src;
    int rc = compile_node(&c, src, NULL, &t->root, &t->constant);
    if (rc) {
        json_decref(src);
        free(t);
        return rc;
    }
    t->roots = c.used;
    *out = t;
    return 0;
}

/* Compile SRC (borrowed; it is copied, so the caller may change or free it afterwards).
 * Returns 0 and *OUT (owned, free with template_free), or BR_EINVALID_DEFINITION with ERR
 * holding the message and detail {pointer, position}. Any thread. */
int template_compile(const json_t *src, unsigned allowed, template_t **out, err_t *err)
{
    *out = NULL;
    json_t *copy = src ? jsonx_copy(src) : NULL;
    if (!copy)
        return err_set(err, BR_EINVALID_DEFINITION, "no template to compile");
    return compile_owned(copy, allowed, out, err);
}

/* Compile TEXT (borrowed, NUL-terminated UTF-8) as template_compile compiles a JSON string.
 * Returns as template_compile; text that is not UTF-8 is an invalid definition too. */
int template_compile_string(const char *text, unsigned allowed, template_t **out, err_t *err)
{
    *out = NULL;
    json_t *s = text ? json_string(text) : NULL;
    if (!s)
        return err_set(err, BR_EINVALID_DEFINITION, "template text is not valid UTF-8");
    return compile_owned(s, allowed, out, err);
}

/* ---- rendering ---- */

/* J from jansson, or an error when jansson ran out of memory. */
static json_t *made(ectx_t *cx, json_t *j)
{
    if (!j)
        template_eval_fail(cx, "out of memory");
    return j;
}

static json_t *render_expr(const part_t *part, ectx_t *cx)
{
    cx->text = part->text;
    cx->len = part->len;
    if (part->expr->op == E_PATH) {
        /* The common case, "{{item}}": a lookup and a copy. */
        const json_t *j;
        if (template_path_get(part->expr, cx, &j))
            return NULL;
        return made(cx, j ? jsonx_copy(j) : json_null());
    }
    val_t v;
    if (template_expr_eval(part->expr, cx, &v))
        return NULL;
    json_t *j = template_val_to_json(&v);
    template_val_free(&v);
    return made(cx, j);
}

static json_t *render_text(const node_t *n, ectx_t *cx)
{
    buf_t b = BUF_INIT;
    int rc = 0;
    for (size_t i = 0; i < n->n && !rc; i++) {
        const part_t *part = &n->u.parts[i];
        if (!part->expr) {
            buf_append(&b, part->text, part->len);
            if (b.len > cx->max)
                rc = template_eval_fail(cx, "the rendered text is longer than %zu bytes", cx->max);
            continue;
        }
        cx->text = part->text;
        cx->len = part->len;
        val_t v;
        if (!(rc = template_expr_eval(part->expr, cx, &v))) {
            rc = template_val_append(cx, &b, &v);
            template_val_free(&v);
        }
    }
    json_t *j = rc ? NULL : made(cx, json_stringn_nocheck(b.data ? b.data : "", b.len));
    buf_deinit(&b);
    return j;
}

static json_t *render_node(const node_t *n, ectx_t *cx)
{
    switch (n->kind) {
    case N_CONST:
        return made(cx, jsonx_copy(n->u.value));
    case N_EXPR:
        return render_expr(&n->u.parts[0], cx);
    case N_TEXT:
        return render_text(n, cx);
    case N_ARRAY: {
        json_t *a = made(cx, json_array());
        for (size_t i = 0; a && i < n->n; i++) {
            json_t *item = render_node(&n->u.items[i], cx);
            if (!item || json_array_append_new(a, item) != 0) {
                json_decref(a);
                return NULL;
            }
        }
        return a;
    }
    default: {
        json_t *o = made(cx, json_object());
        for (size_t i = 0; o && i < n->n; i++) {
            const member_t *m = &n->u.members[i];
            json_t *value = render_node(&m->node, cx);
            if (!value || json_object_setn_new_nocheck(o, m->key, m->klen, value) != 0) {
                json_decref(o);
                return NULL;
            }
        }
        return o;
    }
    }
}

/* Render T (borrowed) in SCOPE (borrowed; NULL reads every root as null). Returns a new value
 * the caller owns, sharing nothing with the scope or T, or NULL with ERR set to
 * BR_EEXPRESSION_ERROR. Any number of threads may render one template at once. */
json_t *template_render(const template_t *t, const tmpl_scope_t *scope, err_t *err)
{
    static const tmpl_scope_t nothing;
    ectx_t cx = {
        .scope = scope ? scope : &nothing,
        .max = scope && scope->max_output ? scope->max_output : TMPL_DEFAULT_OUTPUT,
        .text = "",
        .len = 0,
        .err = err,
    };
    return render_node(&t->root, &cx);
}

/* Whether rendering T always yields an exact copy of template_source(T): no expression, and
 * no \{{ escape that rendering would change. Any thread. */
bool template_is_constant(const template_t *t)
{
    return t->constant;
}

/* T's own copy of its source (borrowed, valid as long as T). Any thread. */
const json_t *template_source(const template_t *t)
{
    return t->src;
}

/* Mask of TMPL_* roots read by T's expressions. Any thread. */
unsigned template_roots_used(const template_t *t)
{
    return t->roots;
}

/* ---- paths read ---- */

typedef struct refs {
    unsigned root_bit; /* bit number of the TMPL_* root */
    template_ref_cb fn;
    void *ctx;
    buf_t ptr; /* pointer of the string in hand */
} refs_t;

static void expr_refs(refs_t *r, const expr_t *e)
{
    if (!e)
        return;
    if (e->op == E_CONST)
        return;
    if (e->op == E_PATH) {
        const seg_t *first = e->u.path.nsegs ? &e->u.path.segs[0] : NULL;
        if (e->root == r->root_bit) {
            const char *p = r->ptr.data ? r->ptr.data : "";
            if (first && first->kind == SEG_KEY)
                r->fn(r->ctx, p, first->key, first->len);
            else
                r->fn(r->ctx, p, NULL, 0);
        }
        for (size_t i = 0; i < e->u.path.nsegs; i++)
            if (e->u.path.segs[i].kind == SEG_EXPR)
                expr_refs(r, e->u.path.segs[i].expr);
        return;
    }
    expr_refs(r, e->u.k.a);
    expr_refs(r, e->u.k.b);
    expr_refs(r, e->u.k.c);
}

static void node_refs(refs_t *r, const node_t *n, const frame_t *at)
{
    switch (n->kind) {
    case N_CONST:
        return;
    case N_EXPR:
    case N_TEXT:
        r->ptr.len = 0;
        if (r->ptr.data)
            r->ptr.data[0] = '\0';
        put_pointer(&r->ptr, at);
        for (size_t i = 0; i < n->n; i++)
            expr_refs(r, n->u.parts[i].expr);
        return;
    case N_ARRAY:
        for (size_t i = 0; i < n->n; i++) {
            frame_t f = {at, NULL, 0, i};
            node_refs(r, &n->u.items[i], &f);
        }
        return;
    default:
        for (size_t i = 0; i < n->n; i++) {
            const member_t *m = &n->u.members[i];
            frame_t f = {at, m->key, m->klen, 0};
            node_refs(r, &m->node, &f);
        }
        return;
    }
}

/* Report every path of T (borrowed) starting at ROOT to FN; see template.h. Constant parts
 * hold no expression, so only the nodes that render something are walked. Any thread. */
void template_root_refs(const template_t *t, unsigned root, template_ref_cb fn, void *ctx)
{
    if (!t || !fn || root == 0 || (root & (root - 1)) != 0 || !(t->roots & root))
        return;
    refs_t r = {.fn = fn, .ctx = ctx, .ptr = BUF_INIT};
    while (!(root & (1u << r.root_bit)))
        r.root_bit++;
    node_refs(&r, &t->root, NULL);
    buf_deinit(&r.ptr);
}

/* Free T (taken); NULL-safe. No render of T may be running. */
void template_free(template_t *t)
{
    if (!t)
        return;
    node_free(&t->root);
    json_decref(t->src);
    free(t);
}
