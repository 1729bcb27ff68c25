/* template_parse.c - template expressions into trees, at compile time only.
 *
 * A recursive-descent parser over an on-demand lexer, one token of lookahead. Precedence, from
 * loosest: | filters, ?:, ||, &&, == !=, < <= > >=, + -, * / %, unary - !. Paths are split
 * into segments, constant subexpressions are folded. Invariant: nesting and tree height are
 * bounded (TMPL_MAX_NESTING, TMPL_MAX_HEIGHT), so neither parsing nor evaluating a hostile
 * template can exhaust the stack.
 */
#include "core/template_internal.h"

#include "core/xalloc.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum token {
    K_EOF, /* the text ended before the closing }} */
    K_ERR, /* the lexer failed; the parser's error is already set */
    K_END, /* }} */
    K_INT,
    K_REAL,
    K_STR,
    K_IDENT,
    K_DOT,
    K_LBRACK,
    K_RBRACK,
    K_LPAREN,
    K_RPAREN,
    K_PLUS,
    K_MINUS,
    K_STAR,
    K_SLASH,
    K_PERCENT,
    K_EQ,
    K_NE,
    K_LT,
    K_LE,
    K_GT,
    K_GE,
    K_AND,
    K_OR,
    K_NOT,
    K_QUEST,
    K_COLON,
    K_PIPE,
};

/* Bit number i is the root TMPL_* == 1u << i. */
static const char *const root_names[] = {"vars", "input", "tasks", "run",
                                         "item", "index", "conn",  "secret"};

typedef struct parser {
    const char *s; /* the whole string, N bytes */
    size_t n;
    size_t open;  /* offset of the {{ being parsed */
    size_t pos;   /* next byte to lex */
    int kind;     /* current token, K_* */
    size_t start; /* offset of the current token */
    json_int_t ival;
    double rval;
    char *sval; /* K_STR: owned, SLEN bytes */
    size_t slen;
    unsigned allowed;
    unsigned *used;
    int nesting;
    bool failed;
    perr_t *pe;
} parser_t;

static void fail(parser_t *p, size_t pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Record the first error only: later ones are consequences of it. */
static void fail(parser_t *p, size_t pos, const char *fmt, ...)
{
    if (p->failed)
        return;
    p->failed = true;
    p->pe->pos = pos;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->pe->msg, sizeof p->pe->msg, fmt, ap);
    va_end(ap);
}

static void unterminated(parser_t *p)
{
    fail(p, p->open, "unterminated '{{' (no closing '}}')");
}

/* The current token is not what the grammar wants: say so, or that the {{ never closes. */
static void syntax(parser_t *p, const char *wanted)
{
    if (p->kind == K_EOF)
        unterminated(p);
    else
        fail(p, p->start, "expected %s", wanted);
}

/* ---- the lexer ---- */

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_ident(char c, bool first)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (!first && is_digit(c));
}

static size_t skip_space(const parser_t *p, size_t i)
{
    while (i < p->n && (p->s[i] == ' ' || p->s[i] == '\t' || p->s[i] == '\n' || p->s[i] == '\r'))
        i++;
    return i;
}

static int hex4(const char *s, unsigned long *out)
{
    unsigned long v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        v <<= 4;
        if (is_digit(c))
            v |= (unsigned long)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned long)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned long)(c - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

static void put_utf8(buf_t *b, unsigned long cp)
{
    char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xC0 | cp >> 6);
        u[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xE0 | cp >> 12);
        u[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        u[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        u[0] = (char)(0xF0 | cp >> 18);
        u[1] = (char)(0x80 | (cp >> 12 & 0x3F));
        u[2] = (char)(0x80 | (cp >> 6 & 0x3F));
        u[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    buf_append(b, u, n);
}

/* Decode the string literal whose quote (' or ") is at AT into p->sval; JSON escapes, plus \'.
 * Returns the offset past the closing quote, or 0 after recording an error. */
static size_t read_string(parser_t *p, size_t at)
{
    char quote = p->s[at];
    buf_t b = BUF_INIT;
    size_t i = at + 1;
    while (i < p->n && p->s[i] != quote) {
        size_t from = i;
        while (i < p->n && p->s[i] != quote && p->s[i] != '\\')
            i++;
        buf_append(&b, p->s + from, i - from);
        if (i >= p->n || p->s[i] == quote)
            break;
        if (i + 1 >= p->n)
            break;
        char c = p->s[i + 1];
        const char *simple = strchr("\"'\\/bfnrt", c);
        if (c && simple) {
            static const char decoded[] = "\"'\\/\b\f\n\r\t";
            buf_putc(&b, decoded[simple - "\"'\\/bfnrt"]);
            i += 2;
            continue;
        }
        unsigned long cp, lo;
        if (c != 'u' || i + 6 > p->n || hex4(p->s + i + 2, &cp) != 0) {
            fail(p, i, "invalid escape in a string literal");
            goto bad;
        }
        i += 6;
        if (cp >= 0xDC00 && cp <= 0xDFFF) {
            fail(p, i - 6, "invalid \\u escape: a lone low surrogate");
            goto bad;
        }
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (i + 6 > p->n || p->s[i] != '\\' || p->s[i + 1] != 'u' ||
                hex4(p->s + i + 2, &lo) != 0 || lo < 0xDC00 || lo > 0xDFFF) {
                fail(p, i - 6, "invalid \\u escape: a high surrogate without its low half");
                goto bad;
            }
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            i += 6;
        }
        put_utf8(&b, cp);
    }
    if (i >= p->n) {
        fail(p, at, "unterminated string literal");
        goto bad;
    }
    free(p->sval);
    p->slen = b.len;
    p->sval = buf_steal(&b);
    return i + 1;
bad:
    buf_deinit(&b);
    return 0;
}

/* A number in JSON's form (leading zeros allowed): integers without '.' or exponent. */
static size_t read_number(parser_t *p, size_t at)
{
    const char *s = p->s;
    size_t i = at;
    bool real = false;
    while (i < p->n && is_digit(s[i]))
        i++;
    if (i + 1 < p->n && s[i] == '.' && is_digit(s[i + 1])) {
        real = true;
        for (i++; i < p->n && is_digit(s[i]);)
            i++;
    }
    if (i < p->n && (s[i] == 'e' || s[i] == 'E')) {
        size_t j = i + 1;
        if (j < p->n && (s[j] == '+' || s[j] == '-'))
            j++;
        if (j < p->n && is_digit(s[j])) {
            real = true;
            for (i = j; i < p->n && is_digit(s[i]);)
                i++;
        }
    }
    if (i < p->n && is_ident(s[i], false)) {
        fail(p, at, "invalid number");
        return 0;
    }
    /* A copy, because strtod would read hex and "inf" forms, and the text goes on. */
    char *text = xstrndup(s + at, i - at);
    errno = 0;
    if (real) {
        p->kind = K_REAL;
        p->rval = strtod(text, NULL);
        if (!isfinite(p->rval))
            fail(p, at, "number out of range");
    } else {
        p->kind = K_INT;
        p->ival = strtoll(text, NULL, 10);
        if (errno == ERANGE)
            fail(p, at, "integer out of range");
    }
    free(text);
    return p->failed ? 0 : i;
}

/* Two-character operators, then one-character ones. */
static const struct {
    const char *text;
    int kind;
} punct[] = {
    {"}}", K_END},   {"==", K_EQ},     {"!=", K_NE},  {"<=", K_LE},    {">=", K_GE},
    {"&&", K_AND},   {"||", K_OR},     {".", K_DOT},  {"[", K_LBRACK}, {"]", K_RBRACK},
    {"(", K_LPAREN}, {")", K_RPAREN},  {"+", K_PLUS}, {"-", K_MINUS},  {"*", K_STAR},
    {"/", K_SLASH},  {"%", K_PERCENT}, {"<", K_LT},   {">", K_GT},     {"!", K_NOT},
    {"?", K_QUEST},  {":", K_COLON},   {"|", K_PIPE},
};

/* Move to the next token. */
static void next(parser_t *p)
{
    free(p->sval);
    p->sval = NULL;
    if (p->failed) {
        p->kind = K_ERR;
        return;
    }
    size_t i = skip_space(p, p->pos);
    p->start = i;
    if (i >= p->n) {
        p->kind = K_EOF;
        p->pos = i;
        return;
    }
    char c = p->s[i];
    size_t end = 0;
    if (c == '"' || c == '\'') {
        end = read_string(p, i);
        p->kind = K_STR;
    } else if (is_digit(c)) {
        end = read_number(p, i);
    } else if (is_ident(c, true)) {
        for (end = i + 1; end < p->n && is_ident(p->s[end], false);)
            end++;
        p->kind = K_IDENT;
    } else {
        for (size_t k = 0; k < sizeof punct / sizeof punct[0]; k++) {
            size_t len = strlen(punct[k].text);
            if (i + len <= p->n && memcmp(p->s + i, punct[k].text, len) == 0) {
                p->kind = punct[k].kind;
                end = i + len;
                break;
            }
        }
        if (!end) {
            if (c == '=')
                fail(p, i, "unexpected '=' (comparison is '==')");
            else if (c > ' ' && c < 0x7f)
                fail(p, i, "unexpected '%c'", c);
            else
                fail(p, i, "unexpected byte 0x%02X", (unsigned)(unsigned char)c);
        }
    }
    if (p->failed) {
        p->kind = K_ERR;
        return;
    }
    p->pos = end;
}

/* Free E (taken) and its operands; NULL-safe. */
void template_expr_free(expr_t *e)
{
    if (!e)
        return;
    switch (e->op) {
    case E_CONST:
        json_decref(e->u.value);
        break;
    case E_PATH:
        for (size_t i = 0; i < e->u.path.nsegs; i++) {
            free(e->u.path.segs[i].key);
            template_expr_free(e->u.path.segs[i].expr);
        }
        free(e->u.path.segs);
        break;
    default:
        template_expr_free(e->u.k.a);
        template_expr_free(e->u.k.b);
        template_expr_free(e->u.k.c);
        json_decref(e->u.k.arg);
        break;
    }
    free(e);
}

static bool is_const(const expr_t *e)
{
    return !e || e->op == E_CONST;
}

/* Evaluate E now when all its operands are constants. An expression that fails (1/0) stays as
 * it is, to fail with its full message when rendered. */
static expr_t *fold(expr_t *e)
{
    static const tmpl_scope_t nothing;
    if (!is_const(e->u.k.a) || !is_const(e->u.k.b) || !is_const(e->u.k.c))
        return e;
    ectx_t cx = {.scope = &nothing, .max = TMPL_DEFAULT_OUTPUT, .text = "", .len = 0, .err = NULL};
    val_t v;
    if (template_expr_eval(e, &cx, &v) != 0)
        return e;
    json_t *j = template_val_to_json(&v);
    template_val_free(&v);
    if (!j)
        return e;
    expr_t *c = XNEW(expr_t);
    c->op = E_CONST;
    c->height = 1;
    c->u.value = j;
    template_expr_free(e);
    return c;
}

static int height(const expr_t *e)
{
    return e ? e->height : 0;
}

/* A node over operands A, B, C (taken; NULL when absent), folded when constant. */
static expr_t *new_node(parser_t *p, int op, expr_t *a, expr_t *b, expr_t *c, int filter,
                        json_t *arg)
{
    int h = height(a);
    if (height(b) > h)
        h = height(b);
    if (height(c) > h)
        h = height(c);
    if (p->failed || h + 1 > TMPL_MAX_HEIGHT) {
        fail(p, p->start, "expression too complex (more than %d levels)", TMPL_MAX_HEIGHT);
        template_expr_free(a);
        template_expr_free(b);
        template_expr_free(c);
        json_decref(arg);
        return NULL;
    }
    expr_t *e = XNEW(expr_t);
    e->op = (uint8_t)op;
    e->filter = (uint8_t)filter;
    e->height = (uint16_t)(h + 1);
    e->u.k.a = a;
    e->u.k.b = b;
    e->u.k.c = c;
    e->u.k.arg = arg;
    return fold(e);
}

static expr_t *new_const(json_t *value)
{
    expr_t *e = XNEW(expr_t);
    e->op = E_CONST;
    e->height = 1;
    e->u.value = value;
    return e;
}

/* One more level of nesting; false (error recorded) past the limit. */
static bool enter(parser_t *p)
{
    if (++p->nesting <= TMPL_MAX_NESTING)
        return true;
    p->nesting--;
    fail(p, p->start, "expression nested too deeply (more than %d levels)", TMPL_MAX_NESTING);
    return false;
}

static void leave(parser_t *p)
{
    p->nesting--;
}

/* ---- the grammar ---- */

static expr_t *parse_pipeline(parser_t *p);
static expr_t *parse_ternary(parser_t *p);
static expr_t *parse_unary(parser_t *p);

/* The JSON literal after "default:", read straight from the text; AT is past the ':'. */
static json_t *parse_filter_arg(parser_t *p, size_t at)
{
    size_t i = skip_space(p, at);
    if (i >= p->n) {
        unterminated(p);
        return NULL;
    }
    if (p->s[i] == '\'') {
        size_t end = read_string(p, i);
        if (!end)
            return NULL;
        p->pos = end;
        return json_stringn_nocheck(p->sval, p->slen);
    }
    json_error_t je;
    json_t *v = json_loadb(p->s + i, p->n - i,
                           JSON_DECODE_ANY | JSON_DISABLE_EOF_CHECK | JSON_ALLOW_NUL, &je);
    if (!v) {
        fail(p, i, "expected a JSON value after 'default:' (%s)", je.text);
        return NULL;
    }
    /* With JSON_DISABLE_EOF_CHECK, jansson stops after the value and reports where. */
    p->pos = i + (size_t)je.position;
    return v;
}

/* expr | name | name:arg ... */
static expr_t *parse_pipeline(parser_t *p)
{
    expr_t *e = parse_ternary(p);
    while (e && p->kind == K_PIPE) {
        next(p);
        if (p->kind != K_IDENT) {
            syntax(p, "a filter name after '|'");
            break;
        }
        size_t at = p->start, len = p->pos - p->start;
        int f = -1;
        for (int k = 0; k <= F_DEFAULT; k++)
            if (strlen(template_filter_names[k]) == len &&
                memcmp(template_filter_names[k], p->s + at, len) == 0)
                f = k;
        if (f < 0) {
            fail(p, at, "unknown filter '%.*s'", (int)len, p->s + at);
            break;
        }
        /* The argument is JSON, not tokens, so look at the raw text after the name. */
        size_t colon = skip_space(p, p->pos);
        json_t *arg = NULL;
        if (colon < p->n && p->s[colon] == ':') {
            if (f != F_DEFAULT) {
                fail(p, colon, "filter '%s' takes no argument", template_filter_names[f]);
                break;
            }
            if (!(arg = parse_filter_arg(p, colon + 1)))
                break;
        } else if (f == F_DEFAULT) {
            fail(p, at, "filter 'default' needs an argument, as in default:\"none\"");
            break;
        }
        next(p);
        e = new_node(p, E_FILTER, e, NULL, NULL, f, arg);
    }
    if (p->failed) {
        template_expr_free(e);
        return NULL;
    }
    return e;
}

static int binary_op(int level, int kind)
{
    static const int ops[][4][2] = {
        {{K_OR, E_OR}},
        {{K_AND, E_AND}},
        {{K_EQ, E_EQ}, {K_NE, E_NE}},
        {{K_LT, E_LT}, {K_LE, E_LE}, {K_GT, E_GT}, {K_GE, E_GE}},
        {{K_PLUS, E_ADD}, {K_MINUS, E_SUB}},
        {{K_STAR, E_MUL}, {K_SLASH, E_DIV}, {K_PERCENT, E_MOD}},
    };
    for (int i = 0; i < 4; i++)
        if (ops[level][i][0] == kind && kind != K_EOF)
            return ops[level][i][1];
    return -1;
}

#define BINARY_LEVELS 6

/* Left-associative binary operators, LEVEL 0 (||) binding loosest. */
static expr_t *parse_binary(parser_t *p, int level)
{
    if (level == BINARY_LEVELS)
        return parse_unary(p);
    expr_t *e = parse_binary(p, level + 1);
    while (e) {
        int op = binary_op(level, p->kind);
        if (op < 0)
            break;
        next(p);
        expr_t *rhs = parse_binary(p, level + 1);
        if (!rhs) {
            template_expr_free(e);
            return NULL;
        }
        e = new_node(p, op, e, rhs, NULL, 0, NULL);
    }
    return e;
}

/* cond ? a : b, right-associative. */
static expr_t *parse_ternary(parser_t *p)
{
    expr_t *cond = parse_binary(p, 0);
    if (!cond || p->kind != K_QUEST)
        return cond;
    if (!enter(p)) {
        template_expr_free(cond);
        return NULL;
    }
    next(p);
    expr_t *a = parse_ternary(p), *b = NULL;
    if (a && p->kind != K_COLON)
        syntax(p, "':' of '?:'");
    if (a && !p->failed) {
        next(p);
        b = parse_ternary(p);
    }
    leave(p);
    if (!b) {
        template_expr_free(cond);
        template_expr_free(a);
        return NULL;
    }
    return new_node(p, E_COND, cond, a, b, 0, NULL);
}

/* Fill S for the segment [E] (E taken): constant keys and indexes are resolved now. */
static void add_index_seg(seg_t *s, expr_t *e)
{
    memset(s, 0, sizeof *s);
    if (e->op == E_CONST && json_is_string(e->u.value)) {
        s->kind = SEG_KEY;
        s->len = json_string_length(e->u.value);
        s->key = xmalloc(s->len + 1); /* not xstrndup: the key may hold NULs */
        memcpy(s->key, json_string_value(e->u.value), s->len + 1);
        template_expr_free(e);
    } else if (e->op == E_CONST && json_is_integer(e->u.value)) {
        s->kind = SEG_INDEX;
        s->index = json_integer_value(e->u.value);
        template_expr_free(e);
    } else {
        s->kind = SEG_EXPR;
        s->expr = e;
    }
}

/* ROOT (the current identifier) followed by .name, [expr] segments. */
static expr_t *parse_path(parser_t *p)
{
    size_t at = p->start, len = p->pos - p->start;
    int root = -1;
    for (int i = 0; i < (int)(sizeof root_names / sizeof root_names[0]); i++)
        if (strlen(root_names[i]) == len && memcmp(root_names[i], p->s + at, len) == 0)
            root = i;
    if (root < 0) {
        fail(p, at,
             "unknown name '%.*s' (a path starts with vars, input, tasks, run, item or "
             "index)",
             (int)len, p->s + at);
        return NULL;
    }
    if (!(p->allowed & (1u << root))) {
        fail(p, at, "root '%s' is not allowed here", root_names[root]);
        return NULL;
    }
    *p->used |= 1u << root;

    expr_t *e = XNEW(expr_t);
    e->op = E_PATH;
    e->root = (uint8_t)root;
    e->height = 1;
    size_t cap = 0;
    next(p);
    while (!p->failed && (p->kind == K_DOT || p->kind == K_LBRACK)) {
        if (e->u.path.nsegs == cap) {
            cap = cap ? cap * 2 : 4;
            e->u.path.segs = xrealloc(e->u.path.segs, cap * sizeof(seg_t));
        }
        seg_t *s = &e->u.path.segs[e->u.path.nsegs];
        if (p->kind == K_DOT) {
            next(p);
            if (p->kind != K_IDENT) {
                syntax(p, "a name after '.'");
                break;
            }
            memset(s, 0, sizeof *s);
            s->kind = SEG_KEY;
            s->len = p->pos - p->start;
            s->key = xstrndup(p->s + p->start, s->len);
            e->u.path.nsegs++;
            next(p);
            continue;
        }
        if (!enter(p))
            break;
        next(p);
        expr_t *ix = parse_pipeline(p);
        leave(p);
        if (!ix)
            break;
        if (p->kind != K_RBRACK) {
            syntax(p, "']'");
            template_expr_free(ix);
            break;
        }
        if (ix->height + 1 > TMPL_MAX_HEIGHT) {
            fail(p, p->start, "expression too complex (more than %d levels)", TMPL_MAX_HEIGHT);
            template_expr_free(ix);
            break;
        }
        if (ix->height + 1 > e->height)
            e->height = (uint16_t)(ix->height + 1);
        add_index_seg(s, ix);
        e->u.path.nsegs++;
        next(p);
    }
    if (p->failed) {
        template_expr_free(e);
        return NULL;
    }
    return e;
}

static expr_t *parse_primary(parser_t *p)
{
    expr_t *e;
    switch (p->kind) {
    case K_INT:
        e = new_const(json_integer(p->ival));
        break;
    case K_REAL:
        e = new_const(json_real(p->rval));
        break;
    case K_STR:
        e = new_const(json_stringn_nocheck(p->sval, p->slen));
        break;
    case K_LPAREN:
        if (!enter(p))
            return NULL;
        next(p);
        e = parse_pipeline(p);
        leave(p);
        if (e && p->kind != K_RPAREN) {
            syntax(p, "')'");
            template_expr_free(e);
            return NULL;
        }
        break;
    case K_IDENT: {
        size_t len = p->pos - p->start;
        const char *w = p->s + p->start;
        if (len == 4 && memcmp(w, "true", 4) == 0)
            e = new_const(json_true());
        else if (len == 5 && memcmp(w, "false", 5) == 0)
            e = new_const(json_false());
        else if (len == 4 && memcmp(w, "null", 4) == 0)
            e = new_const(json_null());
        else
            return parse_path(p);
        break;
    }
    default:
        syntax(p, "an operand");
        return NULL;
    }
    if (e)
        next(p);
    return e;
}

static expr_t *parse_unary(parser_t *p)
{
    if (p->kind != K_MINUS && p->kind != K_NOT)
        return parse_primary(p);
    int op = p->kind == K_MINUS ? E_NEG : E_NOT;
    if (!enter(p))
        return NULL;
    next(p);
    expr_t *a = parse_unary(p);
    leave(p);
    if (!a)
        return NULL;
    return new_node(p, op, a, NULL, NULL, 0, NULL);
}

/* Parse the {{ at OPEN of S; see template_internal.h. Returns the tree (owned) or NULL with
 * *PE set. Keeps no state between calls, so any thread may parse. */
expr_t *template_expr_parse(const char *s, size_t n, size_t open, unsigned allowed, unsigned *used,
                            size_t *end, perr_t *pe)
{
    parser_t p = {
        .s = s, .n = n, .open = open, .pos = open + 2, .allowed = allowed, .used = used, .pe = pe};
    next(&p);
    expr_t *e = parse_pipeline(&p);
    if (e && p.kind != K_END) {
        syntax(&p, "an operator or '}}'");
        template_expr_free(e);
        e = NULL;
    }
    free(p.sval);
    if (e)
        *end = p.pos;
    return e;
}
