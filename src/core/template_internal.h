/* template_internal.h - the insides of the template module, shared by template.c (the JSON
 * walk and rendering), template_parse.c (expressions into trees) and template_eval.c
 * (evaluating trees). Nothing outside src/core/template*.c includes this file.
 *
 * Invariant: an expr_t tree is immutable once template_expr_parse returns it, so any number of
 * threads may evaluate it at once; evaluation keeps all of its state in an ectx_t and val_t
 * values on the caller's stack.
 */
#ifndef BRAID_CORE_TEMPLATE_INTERNAL_H
#define BRAID_CORE_TEMPLATE_INTERNAL_H

#include "core/buf.h"
#include "core/err.h"
#include "core/template.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TMPL_MAX_NESTING 64 /* parentheses, brackets, unary operators and ?: inside one another */
#define TMPL_MAX_HEIGHT 256 /* nodes on the longest path of one expression tree */
#define TMPL_DEFAULT_OUTPUT (1u << 20) /* bytes a produced string may reach by default */

enum expr_op {
    E_CONST,
    E_PATH,
    E_NEG,
    E_NOT,
    E_ADD,
    E_SUB,
    E_MUL,
    E_DIV,
    E_MOD,
    E_EQ,
    E_NE,
    E_LT,
    E_LE,
    E_GT,
    E_GE,
    E_AND,
    E_OR,
    E_COND,
    E_FILTER,
};

enum filter_kind {
    F_JSON,
    F_URLENCODE,
    F_BASE64,
    F_BASE64URL,
    F_UPPER,
    F_LOWER,
    F_LENGTH,
    F_DEFAULT,
};

enum seg_kind {
    SEG_KEY,   /* .name or ["name"]: an object member */
    SEG_INDEX, /* [3] or [-1]: an array element, negative counting from the end */
    SEG_EXPR,  /* [expr]: decided while rendering */
};

typedef struct expr expr_t;

typedef struct seg {
    uint8_t kind;     /* SEG_* */
    char *key;        /* SEG_KEY: owned, LEN bytes (may hold NULs), NUL-terminated */
    size_t len;       /* SEG_KEY: bytes of KEY */
    json_int_t index; /* SEG_INDEX */
    expr_t *expr;     /* SEG_EXPR: owned */
} seg_t;

struct expr {
    uint8_t op;      /* E_* */
    uint8_t filter;  /* E_FILTER: F_* */
    uint8_t root;    /* E_PATH: bit number of the TMPL_* root */
    uint16_t height; /* 1 for a leaf, else 1 + the tallest child */
    union {
        json_t *value; /* E_CONST: owned */
        struct {
            seg_t *segs; /* owned, NSEGS of them */
            size_t nsegs;
        } path;
        struct {
            expr_t *a, *b, *c; /* owned operands: A alone for unary ops and filters, C for ?: */
            json_t *arg;       /* E_FILTER default: the owned JSON argument */
        } k;
    } u;
};

/* A value while an expression is evaluated. Scalars are held unboxed so arithmetic never
 * allocates; strings and containers usually point into the scope or the template. */
enum val_type { V_NULL, V_BOOL, V_INT, V_REAL, V_STR, V_JSON };

typedef struct val {
    uint8_t type; /* V_* */
    union {
        bool b;
        json_int_t i;
        double r;
        struct {
            const char *p; /* N bytes, valid UTF-8 */
            size_t n;
            char *own; /* non-NULL when P is ours to free (then P == OWN) */
        } s;
        const json_t *j; /* V_JSON: an array or object, borrowed from the scope or template */
    } u;
} val_t;

/* Everything one render needs besides the tree; lives on the renderer's stack. */
typedef struct ectx {
    const tmpl_scope_t *scope; /* never NULL */
    size_t max;                /* bytes a produced string may reach */
    const char *text;          /* the {{...}} being rendered (LEN bytes), named in errors */
    size_t len;
    err_t *err; /* may be NULL */
} ectx_t;

/* Filter names by F_* value. */
extern const char *const template_filter_names[F_DEFAULT + 1];

/* Why a parse failed: a message without the expression, and the byte offset of the fault. */
typedef struct perr {
    size_t pos;
    char msg[200];
} perr_t;

/* Parse the expression of the {{ that opens at byte OPEN of S (N bytes, the whole string).
 * ALLOWED is the TMPL_* mask of roots; *USED gets the roots read OR-ed in. Returns the tree
 * (owned, free with template_expr_free) and *END, the offset just past the closing }}; or
 * NULL with *PE filled. Compile time only. */
expr_t *template_expr_parse(const char *s, size_t n, size_t open, unsigned allowed, unsigned *used,
                            size_t *end, perr_t *pe);

/* Free E and everything below it; NULL-safe. */
void template_expr_free(expr_t *e);

/* Evaluate E into *OUT (free with template_val_free). Returns 0, or BR_EEXPRESSION_ERROR with
 * CX->err naming CX->text and the reason. Any thread, E being read-only. */
int template_expr_eval(const expr_t *e, ectx_t *cx, val_t *out);

/* Resolve the path E (op E_PATH) into *OUT: borrowed from the scope, NULL when missing.
 * Fails only when a [expr] segment's expression fails. */
int template_path_get(const expr_t *e, ectx_t *cx, const json_t **out);

/* A borrowed view of J (NULL reads as null) as a value. */
void template_val_borrow(const json_t *j, val_t *out);

/* Release what V owns and make it null. */
void template_val_free(val_t *v);

/* A new JSON value for V (returned owned); containers are deep-copied. NULL only when out of
 * memory inside jansson. */
json_t *template_val_to_json(const val_t *v);

/* Append V to B as interpolated text: strings as they are, null as nothing, the rest as
 * compact JSON. Fails with BR_EEXPRESSION_ERROR when B would pass CX->max bytes. */
int template_val_append(ectx_t *cx, buf_t *b, const val_t *v);

/* How many of the N bytes of S fit in MAX without splitting a UTF-8 sequence, so quotes in
 * messages stay valid UTF-8 (jansson refuses anything else). */
size_t template_utf8_prefix(const char *s, size_t n, size_t max);

/* Record an evaluation error for CX's expression; returns BR_EEXPRESSION_ERROR. */
int template_eval_fail(ectx_t *cx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
