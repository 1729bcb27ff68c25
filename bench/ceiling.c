/* ceiling.c - the ceiling for the HTTP benchmarks: a minimal libmicrohttpd server that reads a
 * POST's body and answers a fixed JSON document, with the same daemon flags and limits as
 * braid's server (src/server/server.c), so the gap between the two is braid's own work.
 *
 *   ceiling [--port N] [--threads N]     defaults: 0 (a free port), 2 (as braid --http-threads)
 *
 * Prints "listening on http://127.0.0.1:PORT" once it listens; SIGTERM or SIGINT stops it.
 *
 * STYLE.md keeps microhttpd.h inside src/server/; this program is the exception on purpose: it
 * measures libmicrohttpd itself, so it must call it bare, without braid in between.
 */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char ANSWER[] = "{\"y\": 2}";

/* The same limits braid's server_config_defaults() sets. */
enum { MEMORY_LIMIT = 16 << 10, CONN_TIMEOUT_S = 30, PER_IP_LIMIT = 64 };

/* Per request: nothing to keep but "seen the head"; the body is read and dropped. Every
 * request is answered from a response made for it, as braid makes one per request. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    static int head_seen;
    (void)cls;
    (void)url;
    (void)version;
    (void)upload_data;
    if (!*con_cls) { /* the head: libmicrohttpd calls again with the body, then once more */
        *con_cls = &head_seen;
        return MHD_YES;
    }
    if (*upload_data_size) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    int post = strcmp(method, MHD_HTTP_METHOD_POST) == 0;
    struct MHD_Response *r = MHD_create_response_from_buffer(
        post ? sizeof ANSWER - 1 : 0, (void *)ANSWER, MHD_RESPMEM_PERSISTENT);
    if (!r)
        return MHD_NO;
    if (post)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    else
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, MHD_HTTP_METHOD_POST);
    enum MHD_Result res =
        MHD_queue_response(conn, post ? MHD_HTTP_OK : MHD_HTTP_METHOD_NOT_ALLOWED, r);
    MHD_destroy_response(r);
    return res;
}

static long arg_long(const char *name, const char *v, long min, long max)
{
    char *end;
    long n = v ? strtol(v, &end, 10) : 0;
    if (!v || *end || end == v || n < min || n > max) {
        fprintf(stderr, "ceiling: %s wants an integer in [%ld, %ld]\n", name, min, max);
        exit(2);
    }
    return n;
}

int main(int argc, char **argv)
{
    long port = 0, threads = 2;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--port") == 0)
            port = arg_long("--port", i + 1 < argc ? argv[++i] : NULL, 0, 65535);
        else if (strcmp(argv[i], "--threads") == 0)
            threads = arg_long("--threads", i + 1 < argc ? argv[++i] : NULL, 1, 64);
        else {
            fprintf(stderr, "usage: ceiling [--port N] [--threads N]\n");
            return 2;
        }
    }

    /* As in braid: block the signals before any thread starts, so only sigwait sees them. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ITC |
            MHD_USE_ERROR_LOG,
        0, NULL, NULL, on_request, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)threads, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)MEMORY_LIMIT, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)CONN_TIMEOUT_S,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)PER_IP_LIMIT, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "ceiling: cannot listen on 127.0.0.1:%ld\n", port);
        return 1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    printf("listening on http://127.0.0.1:%u\n", info ? (unsigned)info->port : (unsigned)port);
    fflush(stdout);

    int sig = 0;
    sigwait(&sigs, &sig);
    MHD_stop_daemon(d);
    return 0;
}
