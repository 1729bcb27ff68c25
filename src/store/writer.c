/* writer.c - the group-commit writer: one thread owns the backend's writing connection and
 * commits many queued writes per transaction.
 *
 * Callers enqueue run and step puts (copies) and synchronous operations; each gets a ticket,
 * handed out in enqueue order. The thread takes everything pending at once, applies it in
 * order in one transaction and marks every ticket up to the batch's last as settled, so
 * "ticket T is durable" is simply "settled >= T and T's batch did not fail". Backend-neutral:
 * it sees the backend only through store_backend_ops_t.
 *
 * A caller about to wait for its ticket while no batch is being committed and few writes are
 * pending commits them itself, on its own thread (writer_try_commit, writer_wait): at low load
 * this spares two hand-offs between threads, each ~40 µs on a virtual machine's idle core,
 * from every durable answer. `busy` makes sure one thread at a time commits.
 */
#include "store/store_internal.h"

#include "core/jsonx.h"
#include "core/log.h"
#include "core/xalloc.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A batch that reaches this many items commits without waiting out the window. */
#define BATCH_GO 1024
/* Producers wait (back-pressure) while this many items are pending. */
#define PENDING_MAX (16 * 1024)
/* A waiting caller commits the pending writes itself only while at most this many are
 * pending: past it the load is high enough for the thread to be busy anyway. */
#define HERE_MAX 64
/* Failed batches remembered, so a waiter on an old ticket still learns of its failure. */
#define FAIL_RING 16

enum { ITEM_RUN, ITEM_STEP, ITEM_OP };

typedef struct request {
    store_op_t *op;
    int rc;    /* the op's result, or its batch's failure */
    err_t err; /* detail for rc */
} request_t;

typedef struct item {
    int kind;
    union {
        run_rec_t *run;
        step_rec_t *step;
        request_t *req; /* on the waiting caller's stack */
    } u;
} item_t;

typedef struct itemvec {
    item_t *v;
    size_t n, cap;
} itemvec_t;

/* The copies of a batch's records live in a bump arena that is emptied, not freed, when the
 * batch is done: a put costs its caller no malloc and the writer no free. A copy holds its
 * strings and its JSON values as text, dumped by the putting thread (the writer, whose one
 * thread every durable answer waits for, only binds them); no JSON value is referenced. */
#define ARENA_CHUNK (64 * 1024)
#define ARENA_KEEP (4 * 1024 * 1024) /* bytes of chunks an emptied arena keeps for reuse */

typedef struct chunk {
    struct chunk *next;
    size_t cap, used;
    _Alignas(16) char data[];
} chunk_t;

typedef struct arena {
    chunk_t *head; /* the chunk being filled; full ones follow */
    /* The latest copies made: a record whose strings equal its predecessor's shares them,
     * which saves the copy and lets the backend skip binding the same text again. */
    const run_rec_t *last_run;
    const step_rec_t *last_step;
} arena_t;

/* A callback waiting for its ticket to settle (writer_notify). */
typedef struct notice {
    uint64_t ticket;
    store_commit_fn fn;
    void *arg;
} notice_t;

typedef struct noticevec {
    notice_t *v;
    size_t n, cap;
} noticevec_t;

static void notice_push(noticevec_t *nv, notice_t n)
{
    if (nv->n == nv->cap) {
        nv->cap = nv->cap ? 2 * nv->cap : 64;
        nv->v = xrealloc(nv->v, nv->cap * sizeof *nv->v);
    }
    nv->v[nv->n++] = n;
}

typedef struct failure {
    uint64_t lo, hi; /* tickets of the failed batch */
    int code;
    char msg[sizeof(((err_t *)0)->msg)];
} failure_t;

struct writer {
    store_backend_t *be;
    const store_backend_ops_t *ops;
    int64_t window_us; /* group-commit window; 0 = none */
    pthread_t thread;

    pthread_mutex_t mu;
    pthread_cond_t work_cv;  /* the thread waits here for work */
    pthread_cond_t done_cv;  /* callers wait here for their ticket */
    pthread_cond_t space_cv; /* producers wait here while the queue is full */

    /* Guarded by mu. */
    itemvec_t pending;
    arena_t pending_arena; /* the copies of pending's records */
    uint32_t *slots; /* run id -> index + 1 in pending, for coalescing; 0 = empty slot */
    size_t slot_cap; /* a power of two, or 0 */
    size_t slot_used;
    int64_t first_us; /* monotonic time the oldest pending item arrived */
    uint64_t issued;  /* last ticket handed out */
    uint64_t settled; /* every ticket <= settled is committed or failed */
    uint64_t urgent;  /* tickets <= urgent skip the window (flushes and ops) */
    bool idle;        /* the thread sleeps with nothing pending */
    bool windowing;   /* the thread waits out the window */
    bool busy;        /* a batch is being committed, by the thread or by a caller */
    size_t pending_ops; /* ops among pending: a batch with one is the thread's to commit */
    bool stopping;
    int space_waiters;
    failure_t fails[FAIL_RING];
    unsigned nfails;
    noticevec_t notices; /* callbacks for tickets not settled yet */
    bool notifying;      /* the writer is calling settled tickets' callbacks (outside mu) */

    /* The committing thread's own: the writer thread's, or a caller's while it is busy. */
    noticevec_t firing; /* the callbacks notify_settled is calling */
    itemvec_t active;
    arena_t active_arena;
    run_rec_t **runs; /* the puts of one stretch between ops, handed to the backend at once */
    step_rec_t **steps;
    store_text_t *run_json, *step_json; /* their texts, gathered */
    size_t runs_cap, steps_cap;

    atomic_uint_fast64_t commits;
};

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void vec_push(itemvec_t *v, item_t it)
{
    if (v->n == v->cap) {
        v->cap = v->cap ? v->cap * 2 : 256;
        v->v = xrealloc(v->v, v->cap * sizeof *v->v);
    }
    v->v[v->n++] = it;
}

/* ---- record copies ---------------------------------------------------------------------------- */

/* N bytes (16-aligned) from A. */
static void *arena_alloc(arena_t *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    chunk_t *c = a->head;
    if (!c || c->cap - c->used < n) {
        /* An emptied chunk further down the list is reused before a new one is made. */
        chunk_t **pp = c ? &c->next : &a->head;
        while (*pp && (*pp)->cap - (*pp)->used < n)
            pp = &(*pp)->next;
        if (*pp) {
            c = *pp;
            *pp = c->next;
        } else {
            size_t cap = n > ARENA_CHUNK ? n : ARENA_CHUNK;
            c = xmalloc(sizeof *c + cap);
            c->cap = cap;
            c->used = 0;
        }
        c->next = a->head;
        a->head = c;
    }
    void *p = c->data + c->used;
    c->used += n;
    return p;
}

/* Empty A, keeping up to ARENA_KEEP bytes of chunks for the next batch. */
static void arena_reset(arena_t *a)
{
    a->last_run = NULL;
    a->last_step = NULL;
    size_t kept = 0;
    for (chunk_t **pp = &a->head; *pp;) {
        chunk_t *c = *pp;
        if (kept + c->cap > ARENA_KEEP) {
            *pp = c->next;
            free(c);
            continue;
        }
        kept += c->cap;
        c->used = 0;
        pp = &c->next;
    }
}

static void arena_free(arena_t *a)
{
    while (a->head) {
        chunk_t *c = a->head;
        a->head = c->next;
        free(c);
    }
}

static size_t str_size(const char *s)
{
    return s ? strlen(s) + 1 : 0;
}

/* Whether S (NULL or a string) equals PREV, the previous copy's same field. */
static bool same_str(const char *prev, const char *s)
{
    if (!s)
        return !prev;
    return prev && strcmp(prev, s) == 0;
}

/* Copy S (SIZE bytes with its NUL, 0 for NULL) to *AT, advancing it, or share PREV, an equal
 * copy already in the arena (SHARE). The copy, or NULL. */
static char *put_str(char **at, const char *s, size_t size, bool share, const char *prev)
{
    if (!s)
        return NULL;
    if (share)
        return (char *)prev;
    char *p = *at;
    memcpy(p, s, size);
    *at += size;
    return p;
}

/* The putting thread's JSON text of the record it puts, kept from put to put. */
static __thread buf_t put_text;
#define PUT_TEXT_KEEP (1024 * 1024) /* bytes of it a thread keeps after a put */

static pthread_key_t put_text_key; /* frees a thread's put_text when it ends */
static pthread_once_t put_text_once = PTHREAD_ONCE_INIT;

static void put_text_free(void *b)
{
    buf_deinit(b);
}

static void put_text_key_make(void)
{
    pthread_key_create(&put_text_key, put_text_free);
}

/* Dump the N values V (NULL: absent) one after the other into put_text; LENS[i] is each
 * one's length, 0 for an absent value (a present one is never empty). */
static void dump_values(json_t *const *v, int n, size_t lens[])
{
    if (!put_text.data) { /* this thread's first put, or its first since a trim */
        pthread_once(&put_text_once, put_text_key_make);
        pthread_setspecific(put_text_key, &put_text);
    }
    buf_reset(&put_text);
    for (int i = 0; i < n; i++) {
        size_t off = put_text.len;
        if (v[i])
            jsonx_dump_buf(&put_text, v[i]);
        lens[i] = put_text.len - off;
    }
}

static size_t sum(const size_t *v, int n)
{
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += v[i];
    return total;
}

/* Fill the N texts JSON with put_text's values (lengths LENS), copied to *AT, advancing it. */
static void put_texts(char **at, store_text_t *json, int n, const size_t lens[])
{
    const char *from = put_text.data;
    for (int i = 0; i < n; i++) {
        json[i].p = NULL;
        json[i].n = lens[i];
        if (lens[i] == 0)
            continue;
        json[i].p = *at;
        memcpy(*at, from, lens[i]);
        *at += lens[i];
        from += lens[i];
    }
}

/* The texts of a copied run or step: right after its struct. */
static store_text_t *run_texts(const run_rec_t *c)
{
    return (store_text_t *)(uintptr_t)(c + 1);
}

static store_text_t *step_texts(const step_rec_t *c)
{
    return (store_text_t *)(uintptr_t)(c + 1);
}

/* A run's record copied into A: the struct, its texts (LENS, in put_text) and its strings in
 * one piece (strings equal to the previous copy's are shared); the copy's JSON pointers are
 * NULL and its held steps empty. SIZES are the strings' str_size. Under mu. */
static run_rec_t *copy_run(arena_t *a, const run_rec_t *r, const size_t sizes[4],
                           const size_t lens[STORE_RUN_TEXTS])
{
    const run_rec_t *prev = a->last_run;
    const char *const from[4] = {r->integration, r->trigger, r->task, r->idempotency_key};
    const char *const had[4] = {prev ? prev->integration : NULL, prev ? prev->trigger : NULL,
                                prev ? prev->task : NULL, prev ? prev->idempotency_key : NULL};
    bool share[4];
    size_t need = sizeof(run_rec_t) + STORE_RUN_TEXTS * sizeof(store_text_t) +
                  sum(lens, STORE_RUN_TEXTS);
    for (int i = 0; i < 4; i++) {
        share[i] = prev && same_str(had[i], from[i]);
        if (!share[i])
            need += sizes[i];
    }
    run_rec_t *c = arena_alloc(a, need);
    *c = *r;
    c->trigger_info = c->input = c->output = c->error = NULL;
    c->steps = (buf_t)BUF_INIT;
    char *at = (char *)(run_texts(c) + STORE_RUN_TEXTS);
    put_texts(&at, run_texts(c), STORE_RUN_TEXTS, lens);
    c->integration = put_str(&at, r->integration, sizes[0], share[0], had[0]);
    c->trigger = put_str(&at, r->trigger, sizes[1], share[1], had[1]);
    c->task = put_str(&at, r->task, sizes[2], share[2], had[2]);
    c->idempotency_key = put_str(&at, r->idempotency_key, sizes[3], share[3], had[3]);
    a->last_run = c;
    return c;
}

static step_rec_t *copy_step(arena_t *a, const step_rec_t *s, const size_t sizes[3],
                             const size_t lens[STORE_STEP_JSON])
{
    const step_rec_t *prev = a->last_step;
    const char *const from[3] = {s->task_id, s->type, s->status};
    const char *const had[3] = {prev ? prev->task_id : NULL, prev ? prev->type : NULL,
                                prev ? prev->status : NULL};
    bool share[3];
    size_t need = sizeof(step_rec_t) + STORE_STEP_JSON * sizeof(store_text_t) +
                  sum(lens, STORE_STEP_JSON);
    for (int i = 0; i < 3; i++) {
        share[i] = prev && same_str(had[i], from[i]);
        if (!share[i])
            need += sizes[i];
    }
    step_rec_t *c = arena_alloc(a, need);
    *c = *s;
    c->result = c->error = NULL;
    char *at = (char *)(step_texts(c) + STORE_STEP_JSON);
    put_texts(&at, step_texts(c), STORE_STEP_JSON, lens);
    c->task_id = put_str(&at, s->task_id, sizes[0], share[0], had[0]);
    c->type = put_str(&at, s->type, sizes[1], share[1], had[1]);
    c->status = put_str(&at, s->status, sizes[2], share[2], had[2]);
    a->last_step = c;
    return c;
}

/* After a put: a thread that once put a huge record does not keep its text. */
static void put_text_trim(void)
{
    if (put_text.cap > PUT_TEXT_KEEP)
        buf_deinit(&put_text);
}

/* ---- coalescing: the latest pending put of each run id --------------------------------------- */

static void map_clear(writer_t *w)
{
    if (w->slot_used) {
        memset(w->slots, 0, w->slot_cap * sizeof *w->slots);
        w->slot_used = 0;
    }
}

static void map_grow(writer_t *w)
{
    size_t old_cap = w->slot_cap;
    uint32_t *old = w->slots;
    w->slot_cap = old_cap ? old_cap * 2 : 1024;
    w->slots = xcalloc(w->slot_cap, sizeof *w->slots);
    size_t mask = w->slot_cap - 1;
    for (size_t i = 0; i < old_cap; i++) {
        if (!old[i])
            continue;
        size_t h = store_id_hash(w->pending.v[old[i] - 1].u.run->id) & mask;
        while (w->slots[h])
            h = (h + 1) & mask;
        w->slots[h] = old[i];
    }
    free(old);
}

/* Put R into pending, replacing an earlier pending put of the same run (since the last op)
 * in place (the earlier copy stays in the arena until the batch is done). */
static void pending_put_run(writer_t *w, run_rec_t *r)
{
    if ((w->slot_used + 1) * 2 > w->slot_cap)
        map_grow(w);
    size_t mask = w->slot_cap - 1;
    size_t h = store_id_hash(r->id) & mask;
    while (w->slots[h]) {
        item_t *it = &w->pending.v[w->slots[h] - 1];
        if (strcmp(it->u.run->id, r->id) == 0) {
            it->u.run = r;
            return;
        }
        h = (h + 1) & mask;
    }
    vec_push(&w->pending, (item_t){.kind = ITEM_RUN, .u.run = r});
    w->slots[h] = (uint32_t)w->pending.n;
    w->slot_used++;
}

/* ---- enqueueing (any thread, under mu) ------------------------------------------------------- */

static void wait_for_space(writer_t *w)
{
    while (w->pending.n >= PENDING_MAX && !w->stopping) {
        w->space_waiters++;
        pthread_cond_wait(&w->space_cv, &w->mu);
        w->space_waiters--;
    }
}

/* Called after an item was added: note the window's start and wake the thread if this item
 * is what it waits for. */
static void after_enqueue(writer_t *w, bool urgent)
{
    if (w->pending.n == 1)
        w->first_us = mono_us();
    if (urgent)
        w->urgent = w->issued;
    if (w->idle) {
        w->idle = false;
        pthread_cond_signal(&w->work_cv);
    } else if (w->windowing && (urgent || w->pending.n >= BATCH_GO)) {
        w->windowing = false;
        pthread_cond_signal(&w->work_cv);
    }
}

/* Enqueue a copy of R for the next batch; a later put of the same run in the same batch
 * replaces it (coalescing). Returns the put's ticket without waiting. Any thread; R's JSON
 * values are dumped on it, outside the lock. */
uint64_t writer_put_run(writer_t *w, const run_rec_t *r)
{
    size_t sizes[4] = {str_size(r->integration), str_size(r->trigger), str_size(r->task),
                       str_size(r->idempotency_key)};
    size_t lens[STORE_RUN_TEXTS];
    json_t *const values[STORE_RUN_JSON] = {r->trigger_info, r->input, r->output, r->error};
    dump_values(values, STORE_RUN_JSON, lens);
    lens[STORE_RUN_JSON] = r->steps.len; /* already text */
    if (r->steps.len)
        buf_append(&put_text, r->steps.data, r->steps.len);
    pthread_mutex_lock(&w->mu);
    wait_for_space(w);
    uint64_t ticket = ++w->issued;
    pending_put_run(w, copy_run(&w->pending_arena, r, sizes, lens));
    after_enqueue(w, false);
    pthread_mutex_unlock(&w->mu);
    put_text_trim();
    return ticket;
}

/* Enqueue a copy of S for the next batch. Returns the put's ticket. Any thread. */
uint64_t writer_put_step(writer_t *w, const step_rec_t *s)
{
    size_t sizes[3] = {str_size(s->task_id), str_size(s->type), str_size(s->status)};
    size_t lens[STORE_STEP_JSON];
    json_t *const values[STORE_STEP_JSON] = {s->result, s->error};
    dump_values(values, STORE_STEP_JSON, lens);
    pthread_mutex_lock(&w->mu);
    wait_for_space(w);
    uint64_t ticket = ++w->issued;
    step_rec_t *copy = copy_step(&w->pending_arena, s, sizes, lens);
    vec_push(&w->pending, (item_t){.kind = ITEM_STEP, .u.step = copy});
    after_enqueue(w, false);
    pthread_mutex_unlock(&w->mu);
    put_text_trim();
    return ticket;
}

static void run_batch(writer_t *w);
static bool may_commit_here(const writer_t *w);

/* TICKET, clamped to the last ticket issued; when it has not settled and this caller may
 * commit (may_commit_here), every pending write, TICKET's too, is committed here first. Under
 * mu. */
static uint64_t commit_here_if_free(writer_t *w, uint64_t ticket)
{
    if (ticket > w->issued)
        ticket = w->issued;
    if (w->settled < ticket && may_commit_here(w))
        run_batch(w);
    return ticket;
}

/* Result for a settled TICKET: 0, or the failure of the batch that held it. Under mu. */
static int ticket_result(writer_t *w, uint64_t ticket, err_t *err)
{
    unsigned n = w->nfails < FAIL_RING ? w->nfails : FAIL_RING;
    for (unsigned i = 0; i < n; i++) {
        const failure_t *f = &w->fails[i];
        if (ticket >= f->lo && ticket <= f->hi)
            return err_set(err, f->code, "%s", f->msg);
    }
    return 0;
}

/* Run OP in the writer thread after every write enqueued before it, and wait until the batch
 * holding it has committed. Returns the op's own result or, when the batch failed, the
 * batch's error (the op's outputs are then cleared). OP is borrowed. Any thread but the
 * writer's. */
int writer_exec(writer_t *w, store_op_t *op, err_t *err)
{
    request_t req = {.op = op};
    pthread_mutex_lock(&w->mu);
    if (w->stopping) {
        pthread_mutex_unlock(&w->mu);
        return err_set(err, BR_ESTORE, "the store is closing");
    }
    uint64_t ticket = ++w->issued;
    vec_push(&w->pending, (item_t){.kind = ITEM_OP, .u.req = &req});
    w->pending_ops++;
    map_clear(w); /* puts after an op must not be folded into puts before it */
    after_enqueue(w, true);
    while (w->settled < ticket)
        pthread_cond_wait(&w->done_cv, &w->mu);
    pthread_mutex_unlock(&w->mu);
    if (req.rc < 0) {
        if (err)
            err_move(err, &req.err);
        else
            err_clear(&req.err);
    }
    return req.rc;
}

/* Block until every write up to TICKET is committed: 0, or the error of the batch that held
 * TICKET. Ticket 0 returns at once. Any thread but the writer's; not from a notice callback.
 * At low load the caller commits the pending writes itself (run_batch).
 * Somebody waiting is reason enough to commit: the window exists to gather writes nobody waits
 * for. Writes that arrive while this commit's fsync runs still share the next one, so
 * concurrent waiters keep committing in groups. */
int writer_wait(writer_t *w, uint64_t ticket, err_t *err)
{
    if (ticket == 0)
        return 0;
    pthread_mutex_lock(&w->mu);
    ticket = commit_here_if_free(w, ticket);
    if (w->settled < ticket) {
        if (ticket > w->urgent)
            w->urgent = ticket;
        if (w->windowing) {
            w->windowing = false;
            pthread_cond_signal(&w->work_cv);
        }
    }
    while (w->settled < ticket)
        pthread_cond_wait(&w->done_cv, &w->mu);
    int rc = ticket_result(w, ticket, err);
    pthread_mutex_unlock(&w->mu);
    return rc;
}

/* Call FN(ARG, RC, ERR) once TICKET has settled: here and now when it already has, else on
 * the writer thread right after the commit that settles it (FN must be quick and must not call
 * back into the writer). A pending callback cuts the window short, as a waiter does. Any
 * thread. */
void writer_notify(writer_t *w, uint64_t ticket, store_commit_fn fn, void *arg)
{
    pthread_mutex_lock(&w->mu);
    if (ticket > w->issued)
        ticket = w->issued;
    if (w->settled >= ticket) {
        err_t err = {0};
        int rc = ticket_result(w, ticket, &err);
        pthread_mutex_unlock(&w->mu);
        fn(arg, rc, &err);
        err_clear(&err);
        return;
    }
    notice_push(&w->notices, (notice_t){ticket, fn, arg});
    if (ticket > w->urgent)
        w->urgent = ticket;
    if (w->windowing) {
        w->windowing = false;
        pthread_cond_signal(&w->work_cv);
    }
    pthread_mutex_unlock(&w->mu);
}

/* See store_internal.h. */
bool writer_try_commit(writer_t *w, uint64_t ticket, int *rc, err_t *err)
{
    pthread_mutex_lock(&w->mu);
    ticket = commit_here_if_free(w, ticket);
    bool settled = w->settled >= ticket;
    if (settled)
        *rc = ticket_result(w, ticket, err);
    pthread_mutex_unlock(&w->mu);
    return settled;
}

/* Commit everything enqueued so far without waiting out the window, and wait for it. Returns
 * 0 or the error of a failed batch among them (the latest one). Any thread. */
int writer_flush(writer_t *w, err_t *err)
{
    pthread_mutex_lock(&w->mu);
    uint64_t ticket = w->issued;
    uint64_t from = w->settled + 1;
    if (ticket > w->urgent)
        w->urgent = ticket;
    if (w->windowing) {
        w->windowing = false;
        pthread_cond_signal(&w->work_cv);
    }
    while (w->settled < ticket || w->notifying)
        pthread_cond_wait(&w->done_cv, &w->mu);
    int rc = 0;
    unsigned n = w->nfails < FAIL_RING ? w->nfails : FAIL_RING;
    for (unsigned i = 0; i < n && rc == 0; i++) {
        const failure_t *f = &w->fails[(w->nfails - 1 - i) % FAIL_RING];
        if (f->hi >= from && f->lo <= ticket)
            rc = err_set(err, f->code, "%s", f->msg);
    }
    pthread_mutex_unlock(&w->mu);
    return rc;
}

/* Transactions committed so far. Any thread. */
uint64_t writer_commit_count(const writer_t *w)
{
    return atomic_load_explicit((atomic_uint_fast64_t *)&w->commits, memory_order_relaxed);
}

/* ---- the writer thread ----------------------------------------------------------------------- */

/* Free OP's outputs (a claim's records, a cancel's ids) and zero its result fields. */
void store_op_clear_results(store_op_t *op)
{
    switch (op->kind) {
    case STORE_OP_PUBLISH:
    case STORE_OP_CONNECTOR_PUBLISH:
        op->u.publish.version = 0;
        op->u.publish.created = false;
        break;
    case STORE_OP_CLAIM:
        run_recs_free(op->u.claim.out, op->u.claim.n);
        op->u.claim.out = NULL;
        op->u.claim.n = 0;
        break;
    case STORE_OP_CLAIM_ID:
        run_rec_free(op->u.claim_id.out);
        op->u.claim_id.out = NULL;
        break;
    case STORE_OP_RUN_CANCEL:
        op->u.run_cancel.status = RUN_SCHEDULED;
        break;
    case STORE_OP_RECOVER:
        op->u.recover.requeued = op->u.recover.failed = 0;
        break;
    case STORE_OP_CANCEL:
        json_decref(op->u.cancel.running);
        op->u.cancel.running = NULL;
        break;
    case STORE_OP_IDEMPOTENCY:
        op->u.idem.existing[0] = '\0';
        break;
    case STORE_OP_PURGE:
        op->u.purge.deleted = 0;
        break;
    case STORE_OP_ARCHIVE:
    case STORE_OP_RENEW:
    case STORE_OP_TOKEN_PUT:
    case STORE_OP_TOKEN_REVOKE:
    case STORE_OP_CONNECTION_PUT:
    case STORE_OP_CONNECTION_DELETE:
    case STORE_OP_CONNECTION_PUT_ALL:
        break;
    }
}

/* Run one op inside a savepoint: its own failure is its caller's answer and undoes only the
 * op; a failure that ends the whole transaction fails the batch. */
static int apply_op(writer_t *w, request_t *req, err_t *err)
{
    store_op_clear_results(req->op);
    err_clear(&req->err);
    int rc = w->ops->savepoint(w->be, err);
    if (rc < 0)
        return rc;
    req->rc = w->ops->exec(w->be, req->op, &req->err);
    if (req->rc == 0)
        return w->ops->release(w->be, true, err);
    store_op_clear_results(req->op);
    rc = w->ops->release(w->be, false, err);
    if (rc < 0)
        return rc;
    if (!w->ops->in_transaction(w->be))
        return err_set(err, req->rc, "%s", req->err.msg);
    return 0;
}

/* Write the puts of active items [FROM, TO) (no op among them): all runs, then all steps,
 * each kind in order. Runs and steps never touch each other's rows, and a run's puts before
 * an op are never folded into its puts after it, so only the order within a kind matters. */
static int apply_puts(writer_t *w, size_t from, size_t to, err_t *err)
{
    size_t nr = 0, ns = 0;
    for (size_t i = from; i < to; i++) {
        item_t *it = &w->active.v[i];
        if (it->kind == ITEM_RUN) {
            if (nr == w->runs_cap) {
                w->runs_cap = w->runs_cap ? w->runs_cap * 2 : 256;
                w->runs = xrealloc(w->runs, w->runs_cap * sizeof *w->runs);
                w->run_json =
                    xrealloc(w->run_json, w->runs_cap * STORE_RUN_TEXTS * sizeof *w->run_json);
            }
            memcpy(&w->run_json[nr * STORE_RUN_TEXTS], run_texts(it->u.run),
                   STORE_RUN_TEXTS * sizeof *w->run_json);
            w->runs[nr++] = it->u.run;
        } else {
            if (ns == w->steps_cap) {
                w->steps_cap = w->steps_cap ? w->steps_cap * 2 : 256;
                w->steps = xrealloc(w->steps, w->steps_cap * sizeof *w->steps);
                w->step_json =
                    xrealloc(w->step_json, w->steps_cap * STORE_STEP_JSON * sizeof *w->step_json);
            }
            memcpy(&w->step_json[ns * STORE_STEP_JSON], step_texts(it->u.step),
                   STORE_STEP_JSON * sizeof *w->step_json);
            w->steps[ns++] = it->u.step;
        }
    }
    int rc = 0;
    if (nr)
        rc = w->ops->run_put(w->be, w->runs, w->run_json, nr, err);
    if (rc == 0 && ns)
        rc = w->ops->step_put(w->be, w->steps, w->step_json, ns, err);
    return rc;
}

static int apply_once(writer_t *w, err_t *err)
{
    const store_backend_ops_t *ops = w->ops;
    int rc = ops->begin(w->be, err);
    if (rc < 0)
        return rc;
    size_t from = 0;
    for (size_t i = 0; i <= w->active.n && rc == 0; i++) {
        if (i < w->active.n && w->active.v[i].kind != ITEM_OP)
            continue;
        if (i > from)
            rc = apply_puts(w, from, i, err);
        if (rc == 0 && i < w->active.n)
            rc = apply_op(w, w->active.v[i].u.req, err);
        from = i + 1;
    }
    if (rc == 0)
        rc = ops->commit(w->be, err);
    if (rc < 0)
        ops->rollback(w->be);
    return rc;
}

/* Apply the active batch; a failed batch is tried once more (a busy database or a passing
 * I/O error), since puts are idempotent and ops were rolled back. */
static int apply_batch(writer_t *w, err_t *err)
{
    int rc = apply_once(w, err);
    if (rc == 0)
        return 0;
    log_msg(LOG_WARN, "store: a batch of %zu writes failed (%s), trying it again", w->active.n,
            err->msg);
    struct timespec pause = {0, 20 * 1000 * 1000};
    nanosleep(&pause, NULL);
    err_clear(err);
    rc = apply_once(w, err);
    if (rc < 0)
        log_msg(LOG_ERROR, "store: a batch of %zu writes was lost: %s", w->active.n, err->msg);
    return rc;
}

/* Hand the batch's results to its requests and drop its records. Outside mu: a request's
 * owner reads it only after seeing its ticket settled, which happens later under mu. */
static void finish_batch(writer_t *w, int rc, const err_t *err)
{
    for (size_t i = 0; i < w->active.n; i++) {
        item_t *it = &w->active.v[i];
        if (it->kind == ITEM_OP && rc < 0) {
            request_t *req = it->u.req;
            store_op_clear_results(req->op);
            req->rc = err_set(&req->err, rc, "%s", err->msg);
        }
    }
    w->active.n = 0;
    arena_reset(&w->active_arena);
}

/* Wait for work nobody else is committing, then, unless the batch is urgent or large, for
 * company until the oldest pending item is window_us old. Under mu; returns false when
 * stopped with nothing left. A waiting caller may take the pending writes meanwhile
 * (may_commit_here): then the wait starts over. */
static bool wait_for_batch(writer_t *w)
{
    for (;;) {
        while ((w->pending.n == 0 || w->busy) && !w->stopping) {
            w->idle = true;
            pthread_cond_wait(&w->work_cv, &w->mu);
            w->idle = false;
        }
        while (w->busy) /* stopping: a caller's commit ends first */
            pthread_cond_wait(&w->done_cv, &w->mu);
        if (w->pending.n == 0)
            return false;
        int64_t deadline = w->first_us + w->window_us;
        while (w->window_us > 0 && !w->stopping && w->pending.n < BATCH_GO &&
               w->urgent <= w->settled && !w->busy) {
            if (mono_us() >= deadline)
                break;
            struct timespec ts = {(time_t)(deadline / 1000000), (long)(deadline % 1000000) * 1000};
            w->windowing = true;
            pthread_cond_timedwait(&w->work_cv, &w->mu, &ts);
            w->windowing = false;
        }
        if (!w->busy && w->pending.n > 0)
            return true;
    }
}

/* Call the callbacks of every ticket the batch just settled with its result RC/ERR. Under mu,
 * which is let go while they run: a callback may take locks of its own (resuming an HTTP
 * connection does). Callbacks registered meanwhile for later writes stay for their batch;
 * those whose ticket has settled by then are called by writer_notify itself. */
static void notify_settled(writer_t *w, int rc, const err_t *err)
{
    w->firing.n = 0;
    size_t left = 0;
    for (size_t i = 0; i < w->notices.n; i++) {
        if (w->notices.v[i].ticket <= w->settled)
            notice_push(&w->firing, w->notices.v[i]);
        else /* registered for writes queued during the commit */
            w->notices.v[left++] = w->notices.v[i];
    }
    w->notices.n = left;
    w->notifying = true;
    pthread_mutex_unlock(&w->mu);
    for (size_t i = 0; i < w->firing.n; i++)
        w->firing.v[i].fn(w->firing.v[i].arg, rc, err);
    pthread_mutex_lock(&w->mu);
    w->notifying = false;
}

/* Commit everything pending as one batch on this thread, settle its tickets and call their
 * callbacks. Under mu, which is let go while the batch is applied; busy keeps every other
 * thread from committing until this one is done. */
static void run_batch(writer_t *w)
{
    itemvec_t t = w->active;
    w->active = w->pending;
    w->pending = t;
    arena_t ta = w->active_arena;
    w->active_arena = w->pending_arena;
    w->pending_arena = ta;
    map_clear(w);
    w->pending_ops = 0;
    uint64_t lo = w->settled + 1, hi = w->issued;
    w->busy = true;
    if (w->space_waiters)
        pthread_cond_broadcast(&w->space_cv);
    pthread_mutex_unlock(&w->mu);

    err_t err = {0};
    int rc = apply_batch(w, &err);
    finish_batch(w, rc, &err);
    if (rc == 0)
        atomic_fetch_add_explicit(&w->commits, 1, memory_order_relaxed);

    pthread_mutex_lock(&w->mu);
    if (rc < 0) {
        failure_t *f = &w->fails[w->nfails++ % FAIL_RING];
        f->lo = lo;
        f->hi = hi;
        f->code = rc;
        snprintf(f->msg, sizeof f->msg, "%s", err.msg);
    }
    w->settled = hi;
    if (w->notices.n > 0)
        notify_settled(w, rc, &err);
    w->busy = false;
    pthread_cond_broadcast(&w->done_cv);
    if (w->pending.n > 0 && w->idle) /* writes that came while a caller committed */
        pthread_cond_signal(&w->work_cv);
    err_clear(&err);
}

/* Whether a caller waiting for a ticket not settled yet may commit the pending writes itself:
 * nobody commits now, few are pending, and no op among them (a purge or a claim may take a
 * while, and belongs on the writer thread). Under mu. */
static bool may_commit_here(const writer_t *w)
{
    return !w->busy && !w->stopping && w->pending.n > 0 && w->pending.n <= HERE_MAX &&
           w->pending_ops == 0;
}

static void *writer_main(void *arg)
{
    writer_t *w = arg;
    pthread_setname_np(pthread_self(), "braid-writer"); /* for top, perf and gdb */
    pthread_mutex_lock(&w->mu);
    while (wait_for_batch(w))
        run_batch(w);
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/* Start the writer thread over BE/OPS (borrowed; they must outlive the writer). Returned owned
 * in *OUT (stop and free with writer_stop). 0, or BR_ESTORE when the thread cannot start. */
int writer_start(store_backend_t *be, const store_backend_ops_t *ops, int64_t group_commit_ms,
                 writer_t **out, err_t *err)
{
    writer_t *w = XNEW(writer_t);
    w->be = be;
    w->ops = ops;
    w->window_us = group_commit_ms > 0 ? group_commit_ms * 1000 : 0;
    atomic_init(&w->commits, 0);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->work_cv, &ca);
    pthread_cond_init(&w->done_cv, NULL);
    pthread_cond_init(&w->space_cv, NULL);
    pthread_condattr_destroy(&ca);
    int e = pthread_create(&w->thread, NULL, writer_main, w);
    if (e != 0) {
        pthread_mutex_destroy(&w->mu);
        pthread_cond_destroy(&w->work_cv);
        pthread_cond_destroy(&w->done_cv);
        pthread_cond_destroy(&w->space_cv);
        free(w);
        return err_set(err, BR_ESTORE, "cannot start the store writer: %s", strerror(e));
    }
    *out = w;
    return 0;
}

/* Commit everything pending, stop the thread and free W. No other call may be in progress or
 * follow. NULL-safe. */
void writer_stop(writer_t *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    w->stopping = true;
    pthread_cond_signal(&w->work_cv);
    pthread_cond_broadcast(&w->space_cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    free(w->pending.v);
    free(w->active.v);
    arena_free(&w->pending_arena);
    arena_free(&w->active_arena);
    free(w->runs);
    free(w->steps);
    free(w->run_json);
    free(w->step_json);
    free(w->slots);
    free(w->notices.v);
    free(w->firing.v);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->work_cv);
    pthread_cond_destroy(&w->done_cv);
    pthread_cond_destroy(&w->space_cv);
    free(w);
}
