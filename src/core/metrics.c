/* metrics.c - see metrics.h. One mutex guards a map from "family|labels" to a series; the
 * families (name, type, help) are a fixed table, so rendering needs no registration step.
 * Label values are escaped once, when a series is first created. */
#include "core/metrics.h"

#include "core/strmap.h"
#include "core/xalloc.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { KIND_COUNTER, KIND_GAUGE, KIND_HISTOGRAM } kind_t;

enum {
    FAM_RUNS_STARTED,
    FAM_RUNS_FINISHED,
    FAM_RUN_DURATION,
    FAM_QUEUE_DEPTH,
    FAM_HTTP_IN_FLIGHT,
    FAM_HTTP_REQUESTS,
    FAM_HTTP_DURATION,
    FAM_HTTP_ERRORS,
    FAM_COUNT_
};

static const struct {
    const char *name;
    kind_t kind;
    const char *help;
} families[FAM_COUNT_] = {
    [FAM_RUNS_STARTED] = {"braid_runs_started_total", KIND_COUNTER, "Runs started."},
    [FAM_RUNS_FINISHED] = {"braid_runs_finished_total", KIND_COUNTER, "Runs finished."},
    [FAM_RUN_DURATION] = {"braid_run_duration_seconds", KIND_HISTOGRAM, "Duration of runs."},
    [FAM_QUEUE_DEPTH] = {"braid_queue_depth", KIND_GAUGE, "Runs in the queue by status."},
    [FAM_HTTP_IN_FLIGHT] = {"braid_http_requests_in_flight", KIND_GAUGE,
                            "HTTP requests being served."},
    [FAM_HTTP_REQUESTS] = {"braid_http_requests_total", KIND_COUNTER, "HTTP requests answered."},
    [FAM_HTTP_DURATION] = {"braid_http_request_duration_seconds", KIND_HISTOGRAM,
                           "Duration of HTTP requests."},
    [FAM_HTTP_ERRORS] = {"braid_http_errors_total", KIND_COUNTER, "HTTP error answers by code."},
};

static const double bounds[] = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                1,     2.5,   5,    10,    30,    60,  300};
#define NBOUNDS (sizeof bounds / sizeof bounds[0])

typedef struct series {
    int fam;
    char *labels;               /* rendered: a="x",b="y" (may be empty) */
    double value;               /* counters and gauges */
    uint64_t buckets[NBOUNDS];  /* histograms: observations <= bounds[i] (not cumulative) */
    uint64_t count;             /* histograms: all observations */
    double sum;                 /* histograms: sum of observations */
} series_t;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static strmap_t *all; /* "fam|labels" -> series_t *; created on first use */

/* Append "NAME=\"VALUE\"" with VALUE escaped as the text format wants (\\, \", \n). Called for
 * every run and request, so it copies runs of plain characters at once and never formats. */
static void put_label(buf_t *b, const char *name, const char *value)
{
    if (b->len)
        buf_putc(b, ',');
    buf_puts(b, name);
    buf_append(b, "=\"", 2);
    const char *p = value ? value : "";
    for (;;) {
        size_t plain = strcspn(p, "\\\"\n");
        buf_append(b, p, plain);
        p += plain;
        if (!*p)
            break;
        buf_putc(b, '\\');
        buf_putc(b, *p == '\n' ? 'n' : *p);
        p++;
    }
    buf_putc(b, '"');
}

/* The series of FAM with LABELS (taken into a key); created on first use. Lock held. */
static series_t *series_get(int fam, const char *labels)
{
    if (!all)
        all = strmap_new();
    /* The key is one character for the family, then the labels. */
    char key[512];
    size_t n = strlen(labels);
    char *k = n + 2 <= sizeof key ? key : xmalloc(n + 2);
    k[0] = (char)('A' + fam);
    memcpy(k + 1, labels, n + 1);
    series_t *s = strmap_get(all, k);
    if (!s) {
        s = XNEW(series_t);
        s->fam = fam;
        s->labels = xstrdup(labels);
        strmap_put(all, k, s);
    }
    if (k != key)
        free(k);
    return s;
}

static unsigned generation = 1; /* under lock; see recent_t */

/* The unlabeled series of FAM, remembered once found (until metrics_reset). Lock held. */
static series_t *plain_series(int fam)
{
    static series_t *plain[FAM_COUNT_];
    static unsigned plain_gen[FAM_COUNT_];
    if (plain_gen[fam] != generation) {
        plain[fam] = series_get(fam, "");
        plain_gen[fam] = generation;
    }
    return plain[fam];
}

static void add(int fam, const char *labels, double v)
{
    pthread_mutex_lock(&lock);
    (*labels ? series_get(fam, labels) : plain_series(fam))->value += v;
    pthread_mutex_unlock(&lock);
}

/* One observation V of the unlabeled histogram FAM. */
static void observe(int fam, double v)
{
    pthread_mutex_lock(&lock);
    series_t *s = plain_series(fam);
    for (size_t i = 0; i < NBOUNDS; i++)
        if (v <= bounds[i]) {
            s->buckets[i]++;
            break;
        }
    s->count++;
    s->sum += v;
    pthread_mutex_unlock(&lock);
}

/* Runs start and finish, and requests end, far more often than new integrations, routes or
 * statuses appear, so each thread remembers the series it used last: a hit costs a few string
 * compares instead of building label text and looking it up. metrics_reset moves the generation on, which
 * empties every thread's memory at once (the series it pointed to are gone). */
#define RECENT 8
typedef struct recent {
    unsigned gen;
    int fam;
    char name[96];
    char status[16];
    series_t *s;
} recent_t;
static __thread recent_t recent[RECENT];
static __thread unsigned recent_next;

/* The series of FAM labelled NAME_LABEL=NAME (and status=STATUS unless STATUS is NULL). The
 * family decides the label's name, so the memory keys on the family and the values. Lock held. */
static series_t *labeled_series(int fam, const char *name_label, const char *name,
                                const char *status)
{
    size_t nl = strlen(name), sl = status ? strlen(status) : 0;
    bool cacheable = nl < sizeof recent[0].name && sl < sizeof recent[0].status;
    if (cacheable)
        for (int i = 0; i < RECENT; i++) {
            recent_t *r = &recent[i];
            if (r->gen == generation && r->fam == fam && strcmp(r->name, name) == 0 &&
                strcmp(r->status, status ? status : "") == 0)
                return r->s;
        }
    buf_t l = BUF_INIT;
    put_label(&l, name_label, name);
    if (status)
        put_label(&l, "status", status);
    series_t *s = series_get(fam, l.data);
    buf_deinit(&l);
    if (cacheable) {
        recent_t *r = &recent[recent_next++ % RECENT];
        r->gen = generation;
        r->fam = fam;
        memcpy(r->name, name, nl + 1);
        memcpy(r->status, status ? status : "", sl + 1);
        r->s = s;
    }
    return s;
}

void metrics_run_started(const char *integration)
{
    pthread_mutex_lock(&lock);
    labeled_series(FAM_RUNS_STARTED, "integration", integration, NULL)->value += 1;
    pthread_mutex_unlock(&lock);
}

void metrics_run_finished(const char *integration, const char *status, int64_t duration_ms)
{
    pthread_mutex_lock(&lock);
    labeled_series(FAM_RUNS_FINISHED, "integration", integration, status)->value += 1;
    pthread_mutex_unlock(&lock);
    observe(FAM_RUN_DURATION, (double)duration_ms / 1000.0);
}

void metrics_http_begin(void)
{
    add(FAM_HTTP_IN_FLIGHT, "", 1);
}

void metrics_http_end(const char *route, int status, double seconds)
{
    char st[16];
    snprintf(st, sizeof st, "%d", status);
    pthread_mutex_lock(&lock);
    plain_series(FAM_HTTP_IN_FLIGHT)->value -= 1;
    labeled_series(FAM_HTTP_REQUESTS, "route", route, st)->value += 1;
    pthread_mutex_unlock(&lock);
    observe(FAM_HTTP_DURATION, seconds);
}

void metrics_http_error(const char *code)
{
    buf_t l = BUF_INIT;
    put_label(&l, "code", code);
    add(FAM_HTTP_ERRORS, l.data, 1);
    buf_deinit(&l);
}

void metrics_queue_depth(const char *status, double value)
{
    buf_t l = BUF_INIT;
    put_label(&l, "status", status);
    pthread_mutex_lock(&lock);
    series_get(FAM_QUEUE_DEPTH, l.data)->value = value;
    pthread_mutex_unlock(&lock);
    buf_deinit(&l);
}

typedef struct collect {
    series_t **v;
    size_t n;
} collect_t;

static void collect_one(void *ctx, const char *key, void *value)
{
    (void)key;
    collect_t *c = ctx;
    c->v[c->n++] = value;
}

static int by_family_then_labels(const void *a, const void *b)
{
    const series_t *x = *(series_t *const *)a, *y = *(series_t *const *)b;
    if (x->fam != y->fam)
        return x->fam - y->fam;
    return strcmp(x->labels, y->labels);
}

static void put_number(buf_t *b, double v)
{
    if (v == (double)(long long)v)
        buf_printf(b, "%lld", (long long)v);
    else
        buf_printf(b, "%.6g", v);
}

static void render_series(buf_t *out, const series_t *s)
{
    const char *name = families[s->fam].name;
    if (families[s->fam].kind != KIND_HISTOGRAM) {
        buf_printf(out, "%s%s%s%s ", name, *s->labels ? "{" : "", s->labels,
                   *s->labels ? "}" : "");
        put_number(out, s->value);
        buf_putc(out, '\n');
        return;
    }
    const char *sep = *s->labels ? "," : "";
    uint64_t cum = 0;
    for (size_t i = 0; i < NBOUNDS; i++) {
        cum += s->buckets[i];
        buf_printf(out, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, s->labels, sep, bounds[i],
                   (unsigned long long)cum);
    }
    buf_printf(out, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, s->labels, sep,
               (unsigned long long)s->count);
    buf_printf(out, "%s_sum%s%s%s ", name, *s->labels ? "{" : "", s->labels,
               *s->labels ? "}" : "");
    put_number(out, s->sum);
    buf_printf(out, "\n%s_count%s%s%s %llu\n", name, *s->labels ? "{" : "", s->labels,
               *s->labels ? "}" : "", (unsigned long long)s->count);
}

void metrics_render(buf_t *out)
{
    static const char *kinds[] = {"counter", "gauge", "histogram"};
    pthread_mutex_lock(&lock);
    if (!all)
        all = strmap_new();
    collect_t c = {xcalloc(strmap_count(all) + 1, sizeof(series_t *)), 0};
    strmap_each(all, collect_one, &c);
    qsort(c.v, c.n, sizeof *c.v, by_family_then_labels);
    size_t i = 0;
    for (int fam = 0; fam < FAM_COUNT_; fam++) {
        buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", families[fam].name, families[fam].help,
                   families[fam].name, kinds[families[fam].kind]);
        bool any = false;
        for (; i < c.n && c.v[i]->fam == fam; i++) {
            render_series(out, c.v[i]);
            any = true;
        }
        /* Unlabelled families show a zero until their first update, so they exist at once. */
        if (!any && (fam == FAM_HTTP_IN_FLIGHT))
            buf_printf(out, "%s 0\n", families[fam].name);
    }
    pthread_mutex_unlock(&lock);
    free(c.v);
}

static void free_series(void *ctx, const char *key, void *value)
{
    (void)ctx;
    (void)key;
    series_t *s = value;
    free(s->labels);
    free(s);
}

void metrics_reset(void)
{
    pthread_mutex_lock(&lock);
    if (all) {
        strmap_each(all, free_series, NULL);
        strmap_free(all);
        all = NULL;
    }
    generation++;
    pthread_mutex_unlock(&lock);
}
