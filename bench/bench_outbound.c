/* bench_outbound.c - the cost of an outbound http task against a bare libcurl loop, and how
 * many runs can wait on an upstream at once.
 *
 *   bench_outbound [N] [DATA_DIR]       defaults: 20000 requests, a fresh temp directory
 *
 * An upstream (keep-alive HTTP/1.1, one small JSON answer; `/slow` waits 200 ms) runs in a
 * forked child on 127.0.0.1, so the figures of this process count only the client side.
 *
 *   curl:   one easy handle doing N GETs in a loop — the floor any client pays.
 *   task:   one run whose call_integration task calls, N times in a row (for_each,
 *           parallelism 1), a child whose one task is an http GET, with run history on: the
 *           cost of an http task inside a run, each request leaving its step and run record.
 *   wait:   C threads each start sync runs against /slow at once; reports the runs per second
 *           and, at the peak and afterwards, this process's threads and open sockets: a
 *           waiting run holds only its own thread, and the idle keep-alive connections left
 *           in the handle pool afterwards cost no thread at all.
 *
 * Prints one JSON line per mode. */
#include "core/clock.h"
#include "core/jsonalloc.h"
#include "core/err.h"
#include "engine/engine.h"
#include "bench_util.h"
#include "store/store.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <dirent.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static int port;

/* ---- the upstream (child process) ---------------------------------------------------------- */

static void *serve_conn(void *p)
{
    int fd = (int)(intptr_t)p;
    static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             "Content-Length: 17\r\n\r\n{\"ok\":true,\"n\":1}";
    char buf[8192];
    size_t have = 0;
    for (;;) {
        char *end;
        while (!(end = memmem(buf, have, "\r\n\r\n", 4))) {
            if (have == sizeof buf)
                goto out;
            ssize_t r = recv(fd, buf + have, sizeof buf - have, 0);
            if (r <= 0)
                goto out;
            have += (size_t)r;
        }
        size_t used = (size_t)(end + 4 - buf);
        if (memmem(buf, used, "GET /slow", 9))
            usleep(200000);
        if (send(fd, ok, sizeof ok - 1, MSG_NOSIGNAL) < 0)
            goto out;
        memmove(buf, buf + used, have - used);
        have -= used;
    }
out:
    close(fd);
    return NULL;
}

static void upstream(int lfd)
{
    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0)
            continue;
        pthread_t t;
        pthread_attr_t a;
        pthread_attr_init(&a);
        pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&a, 64 * 1024);
        pthread_create(&t, &a, serve_conn, (void *)(intptr_t)fd);
        pthread_attr_destroy(&a);
    }
}

static pid_t start_upstream(void)
{
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(lfd, 1024) != 0) {
        perror("upstream");
        exit(1);
    }
    socklen_t len = sizeof a;
    getsockname(lfd, (struct sockaddr *)&a, &len);
    port = ntohs(a.sin_port);
    pid_t pid = fork();
    if (pid == 0) {
        upstream(lfd);
        _exit(0);
    }
    close(lfd);
    return pid;
}

/* ---- measurements --------------------------------------------------------------------------- */

static size_t discard(char *p, size_t s, size_t n, void *u)
{
    (void)p, (void)u;
    return s * n;
}

static void bench_curl(long n)
{
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", port);
    CURL *e = curl_easy_init();
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROXY, "");
    int64_t t0 = clock_now_us();
    for (long i = 0; i < n; i++)
        if (curl_easy_perform(e) != CURLE_OK) {
            fprintf(stderr, "curl loop failed\n");
            exit(1);
        }
    double s = (double)(clock_now_us() - t0) / 1e6;
    curl_easy_cleanup(e);
    printf("{\"mode\": \"curl\", \"requests\": %ld, \"seconds\": %.3f, \"rps\": %.0f, "
           "\"us_per_request\": %.2f}\n",
           n, s, (double)n / s, s * 1e6 / (double)n);
}


static void publish(engine_t *eng, const char *path)
{
    char doc[512];
    snprintf(doc, sizeof doc,
             "{\"name\": \"bench/out%s\", \"tasks\": [{\"id\": \"get\", \"type\": \"http\","
             " \"url\": \"http://127.0.0.1:%d%s\"}], \"outputs\": {\"n\": \"{{vars.httpResult.n}}\"}}",
             path[1] ? "-slow" : "", port, path);
    bench_publish(eng, doc);
}

static void run_once(engine_t *eng, const char *name)
{
    exec_request_t req = {.integration = name, .mode = EXEC_SYNC, .trigger = "cli"};
    json_t *out = NULL;
    err_t err = {0};
    if (engine_execute(eng, &req, &out, &err) < 0 ||
        strcmp(json_string_value(json_object_get(out, "status")), "succeeded") != 0) {
        char *text = out ? json_dumps(out, 0) : NULL;
        fprintf(stderr, "run failed: %s %s\n", err.msg, text ? text : "");
        exit(1);
    }
    json_decref(out);
}

static const char *PARENT = "{\"name\": \"bench/out-parent\","
                            " \"inputs\": {\"items\": {\"type\": \"array\", \"required\": true}},"
                            " \"outputs\": {\"calls\": \"{{tasks.each.result | length}}\"},"
                            " \"tasks\": [{\"id\": \"each\", \"type\": \"call_integration\","
                            "   \"integration\": \"bench/out\", \"strategy\": \"sync\","
                            "   \"for_each\": \"{{vars.items}}\", \"parallelism\": 1}]}";

static void bench_task(engine_t *eng, long n)
{
    json_t *items = json_array();
    for (long i = 0; i < n; i++)
        json_array_append_new(items, json_integer(i));
    json_t *payload = json_pack("{s:o}", "items", items);
    exec_request_t req = {.integration = "bench/out-parent", .mode = EXEC_SYNC, .trigger = "cli",
                          .payload = payload};
    json_t *out = NULL;
    err_t err = {0};
    int64_t t0 = clock_now_us();
    if (engine_execute(eng, &req, &out, &err) < 0 ||
        json_integer_value(json_object_get(json_object_get(out, "output"), "calls")) != n) {
        fprintf(stderr, "bench_outbound: the parent run failed: %s\n", err.msg);
        exit(1);
    }
    double s = (double)(clock_now_us() - t0) / 1e6;
    printf("{\"mode\": \"task\", \"requests\": %ld, \"seconds\": %.3f, \"rps\": %.0f, "
           "\"us_per_request\": %.2f}\n",
           n, s, (double)n / s, s * 1e6 / (double)n);
    json_decref(out);
    json_decref(payload);
}

typedef struct waiter {
    engine_t *eng;
    int runs;
} waiter_t;

static void *wait_main(void *p)
{
    waiter_t *w = p;
    for (int i = 0; i < w->runs; i++)
        run_once(w->eng, "bench/out-slow");
    return NULL;
}

/* Threads and sockets of this process, from /proc. */
static void census(int *threads, int *sockets)
{
    *threads = *sockets = 0;
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    while (d && (e = readdir(d)))
        *threads += e->d_name[0] != '.';
    if (d)
        closedir(d);
    d = opendir("/proc/self/fd");
    while (d && (e = readdir(d))) {
        char path[300], target[64];
        snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
        ssize_t n = readlink(path, target, sizeof target - 1);
        if (n > 0) {
            target[n] = '\0';
            *sockets += strncmp(target, "socket:", 7) == 0;
        }
    }
    if (d)
        closedir(d);
}

static void bench_wait(engine_t *eng, int callers, int runs_each)
{
    pthread_t *t = calloc((size_t)callers, sizeof *t);
    waiter_t w = {eng, runs_each};
    int64_t t0 = clock_now_us();
    for (int i = 0; i < callers; i++) {
        pthread_attr_t a;
        pthread_attr_init(&a);
        pthread_attr_setstacksize(&a, 256 * 1024);
        pthread_create(&t[i], &a, wait_main, &w);
        pthread_attr_destroy(&a);
    }
    clock_sleep_ms(100); /* every caller is now waiting on its first /slow answer */
    int threads, sockets;
    census(&threads, &sockets);
    for (int i = 0; i < callers; i++)
        pthread_join(t[i], NULL);
    double s = (double)(clock_now_us() - t0) / 1e6;
    int idle_threads, idle_sockets;
    census(&idle_threads, &idle_sockets);
    printf("{\"mode\": \"wait\", \"callers\": %d, \"runs\": %d, \"seconds\": %.3f, \"rps\": %.0f,"
           " \"threads_in_flight\": %d, \"sockets_in_flight\": %d, \"threads_idle\": %d,"
           " \"sockets_idle\": %d}\n",
           callers, callers * runs_each, s, callers * runs_each / s, threads, sockets,
           idle_threads, idle_sockets);
    free(t);
}

int main(int argc, char **argv)
{
    jsonalloc_install(); /* as braid does */
    long n = argc > 1 ? atol(argv[1]) : 20000;
    char tmpl[] = "/tmp/braid-bench-out-XXXXXX";
    const char *dir = argc > 2 ? argv[2] : mkdtemp(tmpl);
    pid_t up = start_upstream();
    curl_global_init(CURL_GLOBAL_DEFAULT);

    bench_curl(n);

    store_t *st = NULL;
    engine_t *eng = NULL;
    err_t err = {0};
    engine_config_t cfg;
    engine_config_defaults(&cfg);
    json_t *allow = json_pack("[s]", "127.0.0.1/32");
    cfg.allow_net = allow;
    cfg.data_dir = dir;
    if (store_open(dir, NULL, &st, &err) < 0 || engine_new(&cfg, st, &eng, &err) < 0) {
        fprintf(stderr, "bench_outbound: %s\n", err.msg);
        return 1;
    }
    publish(eng, "/");
    publish(eng, "/slow");
    bench_publish(eng, PARENT);
    bench_task(eng, n);
    bench_wait(eng, 64, 5);

    engine_free(eng);
    store_close(st);
    json_decref(allow);
    kill(up, SIGKILL);
    waitpid(up, NULL, 0);
    return 0;
}
