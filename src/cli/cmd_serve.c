/* cmd_serve.c - `braid serve`: the HTTP API and the workers, until SIGTERM or SIGINT. */
#include "cli/cli_internal.h"

#include "server/server.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

static const cli_command_t serve_cmd = {
    "serve", "[options]",
    "Serve the HTTP API (SPEC §9) and run queued and scheduled runs.",
    "On first start an admin token is written to DATA/admin.token (mode 0600).\n"
    "With --listen HOST:0 a free port is chosen; the line 'listening on http://HOST:PORT'\n"
    "on standard output tells which. SIGTERM or SIGINT: stop accepting, let running work\n"
    "finish within --grace-ms, leave queued and scheduled runs in the store, exit 0.",
    0, 0};

static void print_listening(void *ctx, const char *host, int port)
{
    (void)ctx;
    printf("listening on http://%s:%d\n", host, port);
    fflush(stdout);
}

int cmd_serve(int argc, char **argv)
{
    engine_config_t cfg;
    engine_config_defaults(&cfg);
    server_config_t scfg;
    server_config_defaults(&scfg);
    cli_engine_flags_t ef;
    cli_engine_flags_init(&ef, &cfg);
    const char *listen = scfg.listen;
    long long workers = cfg.workers, http_threads = scfg.workers, max_body = (long long)scfg.max_body,
              max_header = (long long)scfg.max_header, grace_ms = scfg.grace_ms,
              max_inflight = scfg.max_inflight;
    cli_opt_t opts[8 + CLI_ENGINE_FLAGS] = { /* its rows, the engine flags, the end */
        {"--listen", OPT_STRING, &listen, "HOST:PORT", "address to listen on (127.0.0.1:8080)", 0,
         0},
        {"--workers", OPT_INT, &workers, "N", "threads running async runs (default 4)", 1, 256},
        {"--http-threads", OPT_INT, &http_threads, "N", "threads answering HTTP (default 2)", 1,
         256},
        {"--max-body", OPT_INT, &max_body, "BYTES", "largest request body (default 10 MiB)", 1,
         1LL << 32},
        {"--max-header-bytes", OPT_INT, &max_header, "BYTES",
         "memory for a request's line and headers (default 16 KiB)", 4096, 1LL << 20},
        {"--max-inflight", OPT_INT, &max_inflight, "N",
         "executions running at once before 429 (default 256)", 1, 100000},
        {"--grace-ms", OPT_INT, &grace_ms, "N", "shutdown grace period (default 30000)", 0,
         3600000},
    };
    cli_engine_flags_opts(&ef, opts + 7);
    cli_global_t g = {0};
    json_t *args = NULL;
    int rc = cli_parse(&serve_cmd, opts, argc, argv, &g, &args);
    json_decref(args);
    if (rc) {
        json_decref(ef.allow_net);
        return rc < 0 ? CLI_OK : rc;
    }
    cli_engine_flags_apply(&ef, &cfg);
    cfg.workers = (int)workers;
    scfg.listen = listen;
    scfg.workers = (int)http_threads;
    scfg.max_body = (size_t)max_body;
    scfg.max_header = (size_t)max_header;
    scfg.max_inflight = (int)max_inflight;
    scfg.grace_ms = grace_ms;
    scfg.data_dir = g.data;
    scfg.on_listening = print_listening;

    /* Block SIGTERM and SIGINT before the store and engine start their threads, so that
     * every thread inherits the mask and server_run alone receives them (sigwait). */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    store_t *st;
    engine_t *eng;
    int open_rc = cli_open(&g, &cfg, &st, &eng);
    if (open_rc) {
        json_decref(ef.allow_net);
        return open_rc;
    }
    err_t err = {0};
    int status = CLI_OK;
    if (server_run(&scfg, eng, st, &err) < 0) {
        cli_print_error(&err);
        err_clear(&err);
        status = CLI_FAILED;
    }
    cli_close(st, eng);
    json_decref(ef.allow_net);
    return status;
}
