/* bench_serve.c - `braid serve` for the benchmarks: the same server, engine and store as the
 * braid program, started the same way, plus one thing the CLI does not show: the store's
 * commit counter, so the durable async benchmark can report store commits per run.
 *
 *   bench_serve --data DIR --commits FILE [--listen HOST:PORT] [--http-threads N]
 *               [--workers N] [--grace-ms N] [--allow-net CIDR]...
 *
 * Every 50 ms the number of commits made so far is written to FILE (one line, replaced
 * atomically). Prints 'listening on http://HOST:PORT' as `braid serve` does; SIGTERM or SIGINT
 * stops it. Nothing here is faster or slower than `braid serve`: only the option parsing is its
 * own (the CLI's parser keeps the store to itself).
 */
#include "core/clock.h"
#include "core/jsonalloc.h"
#include "core/err.h"
#include "engine/engine.h"
#include "server/server.h"
#include "store/store.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static store_t *store;
static const char *commits_path;
static atomic_int done;

static void *report_commits(void *p)
{
    (void)p;
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", commits_path);
    while (!atomic_load(&done)) {
        FILE *f = fopen(tmp, "w");
        if (f) {
            fprintf(f, "%llu\n", (unsigned long long)store_commit_count(store));
            fclose(f);
            rename(tmp, commits_path);
        }
        clock_sleep_ms(50);
    }
    return NULL;
}

static void print_listening(void *ctx, const char *host, int port)
{
    (void)ctx;
    printf("listening on http://%s:%d\n", host, port);
    fflush(stdout);
}

static void usage(void)
{
    fprintf(stderr, "usage: bench_serve --data DIR --commits FILE [--listen HOST:PORT] "
                    "[--http-threads N] [--workers N] [--grace-ms N] [--allow-net CIDR]...\n");
    exit(2);
}

int main(int argc, char **argv)
{
    jsonalloc_install(); /* as braid does */
    engine_config_t cfg;
    engine_config_defaults(&cfg);
    server_config_t scfg;
    server_config_defaults(&scfg);
    json_t *allow = json_array();
    const char *data = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            usage();
        i++;
        if (strcmp(a, "--data") == 0)
            data = v;
        else if (strcmp(a, "--commits") == 0)
            commits_path = v;
        else if (strcmp(a, "--listen") == 0)
            scfg.listen = v;
        else if (strcmp(a, "--http-threads") == 0)
            scfg.workers = atoi(v);
        else if (strcmp(a, "--workers") == 0)
            cfg.workers = atoi(v);
        else if (strcmp(a, "--grace-ms") == 0)
            scfg.grace_ms = atoll(v);
        else if (strcmp(a, "--allow-net") == 0)
            json_array_append_new(allow, json_string(v));
        else
            usage();
    }
    if (!data || !commits_path)
        usage();
    cfg.data_dir = data;
    cfg.allow_net = json_array_size(allow) ? allow : NULL;
    scfg.data_dir = data;
    scfg.on_listening = print_listening;

    /* As `braid serve`: SIGTERM and SIGINT blocked before any thread starts. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);

    engine_t *eng = NULL;
    err_t err = {0};
    if (store_open(data, NULL, &store, &err) < 0 || engine_new(&cfg, store, &eng, &err) < 0) {
        fprintf(stderr, "bench_serve: %s: %s\n", err_name(err.code), err.msg);
        return 1;
    }
    pthread_t reporter;
    pthread_create(&reporter, NULL, report_commits, NULL);
    int rc = server_run(&scfg, eng, store, &err);
    if (rc < 0)
        fprintf(stderr, "bench_serve: %s: %s\n", err_name(err.code), err.msg);
    atomic_store(&done, 1);
    pthread_join(reporter, NULL);
    FILE *f = fopen(commits_path, "w");
    if (f) {
        fprintf(f, "%llu\n", (unsigned long long)store_commit_count(store));
        fclose(f);
    }
    engine_free(eng);
    store_close(store);
    json_decref(allow);
    return rc < 0 ? 1 : 0;
}
