/* test_http_client.c - the outbound client against a small upstream in this process, on
 * 127.0.0.1 only: responses, headers, caps, timeouts, cancellation, redirects, and the guard
 * refusing before any connection is made (the upstream counts what it accepted); and the same
 * client from jobs of the outbound loop, whose waits overlap on one thread. */
#include "core/clock.h"
#include "core/fiber.h"
#include "net/http_client.h"
#include "net/http_loop.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

/* ---- a tiny upstream ------------------------------------------------------------------------ */

static int listen_fd = -1;
static int port;
static atomic_int accepted;
static pthread_t upstream;
static char last_request[8192];
static pthread_mutex_t last_mu = PTHREAD_MUTEX_INITIALIZER;

static void send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

static void answer(int fd, const char *req)
{
    char path[256] = "";
    sscanf(req, "%*s %255s", path);
    char head[1024];
    if (strncmp(path, "/ok", 3) == 0) {
        const char *body = "{\"hello\": \"world\"}";
        snprintf(head, sizeof head,
                 "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Twice: a\r\n"
                 "X-Twice: b\r\nContent-Length: %zu\r\n\r\n",
                 strlen(body));
        send_all(fd, head, strlen(head));
        if (strncmp(req, "HEAD ", 5) != 0)
            send_all(fd, body, strlen(body));
    } else if (strncmp(path, "/big", 4) == 0) {
        snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n");
        send_all(fd, head, strlen(head));
        char chunk[1000];
        memset(chunk, 'x', sizeof chunk);
        for (int i = 0; i < 100; i++)
            send_all(fd, chunk, sizeof chunk);
    } else if (strncmp(path, "/stream", 7) == 0) {
        /* No Content-Length: the cap must be counted as bytes arrive. */
        snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
        send_all(fd, head, strlen(head));
        char chunk[1000];
        memset(chunk, 'y', sizeof chunk);
        for (int i = 0; i < 100; i++)
            send_all(fd, chunk, sizeof chunk);
    } else if (strncmp(path, "/pause", 6) == 0) {
        clock_sleep_ms(300);
        snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        send_all(fd, head, strlen(head));
    } else if (strncmp(path, "/slow", 5) == 0) {
        clock_sleep_ms(3000);
        snprintf(head, sizeof head, "HTTP/1.1 204 No Content\r\n\r\n");
        send_all(fd, head, strlen(head));
    } else if (strncmp(path, "/to-blocked", 11) == 0) {
        snprintf(head, sizeof head,
                 "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.2:%d/ok\r\nContent-Length: "
                 "0\r\n\r\n",
                 port);
        send_all(fd, head, strlen(head));
    } else if (strncmp(path, "/to-file", 8) == 0) {
        snprintf(head, sizeof head,
                 "HTTP/1.1 302 Found\r\nLocation: file:///etc/passwd\r\nContent-Length: 0\r\n\r\n");
        send_all(fd, head, strlen(head));
    } else if (strncmp(path, "/hop", 4) == 0) {
        snprintf(head, sizeof head,
                 "HTTP/1.1 301 Moved\r\nLocation: /ok\r\nContent-Length: 0\r\n\r\n");
        send_all(fd, head, strlen(head));
    } else {
        snprintf(head, sizeof head, "HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nno");
        send_all(fd, head, strlen(head));
    }
}

static void *serve_one(void *arg)
{
    int fd = (int)(intptr_t)arg;
    /* One request per connection is enough here; keep-alive is the client's business. */
    char req[8192];
    size_t n = 0;
    while (n < sizeof req - 1) {
        ssize_t r = recv(fd, req + n, sizeof req - 1 - n, 0);
        if (r <= 0)
            break;
        n += (size_t)r;
        req[n] = '\0';
        char *end = strstr(req, "\r\n\r\n");
        if (!end)
            continue;
        char *cl = strcasestr(req, "content-length:");
        size_t want = cl ? (size_t)atol(cl + 15) : 0;
        if (n >= (size_t)(end + 4 - req) + want)
            break;
    }
    req[n] = '\0';
    pthread_mutex_lock(&last_mu);
    memcpy(last_request, req, n + 1);
    pthread_mutex_unlock(&last_mu);
    answer(fd, req);
    shutdown(fd, SHUT_WR);
    close(fd);
    return NULL;
}

/* A thread per connection: the loop's tests wait on several slow answers at once. */
static void *upstream_main(void *arg)
{
    (void)arg;
    for (;;) {
        int fd = accept(listen_fd, NULL, NULL);
        if (fd < 0)
            return NULL;
        atomic_fetch_add(&accepted, 1);
        pthread_t t;
        if (pthread_create(&t, NULL, serve_one, (void *)(intptr_t)fd) == 0)
            pthread_detach(t);
        else
            close(fd);
    }
}

static int start_upstream(void **state)
{
    (void)state;
    listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int one = 1;
    setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(listen_fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(listen_fd, 64) != 0)
        return -1;
    socklen_t len = sizeof a;
    getsockname(listen_fd, (struct sockaddr *)&a, &len);
    port = ntohs(a.sin_port);
    return pthread_create(&upstream, NULL, upstream_main, NULL);
}

static int stop_upstream(void **state)
{
    (void)state;
    shutdown(listen_fd, SHUT_RDWR);
    close(listen_fd);
    pthread_join(upstream, NULL);
    return 0;
}

/* ---- helpers -------------------------------------------------------------------------------- */

static http_client_t *client(bool allow_loopback)
{
    guard_t *g = guard_new();
    if (allow_loopback)
        assert_int_equal(guard_allow_cidr(g, "127.0.0.1/32", NULL), 0);
    http_client_config_t cfg = {.connect_timeout_ms = 2000, .max_idle_connections = 8};
    return http_client_new(&cfg, g);
}

static char *url(const char *path)
{
    static char u[128];
    snprintf(u, sizeof u, "http://127.0.0.1:%d%s", port, path);
    return u;
}

static int get(http_client_t *c, const char *u, size_t cap, int64_t timeout, http_response_t *resp,
               err_t *err)
{
    http_request_t req = {.method = "GET", .url = u, .timeout_ms = timeout,
                          .max_response_bytes = cap, .follow_redirects = true};
    return http_perform(c, &req, resp, err);
}

/* ---- tests ---------------------------------------------------------------------------------- */

static void test_get_json(void **state)
{
    (void)state;
    http_client_t *c = client(true);
    http_response_t resp;
    err_t err = {0};
    assert_int_equal(get(c, url("/ok"), 1 << 20, 5000, &resp, &err), 0);
    assert_int_equal(resp.status, 200);
    assert_string_equal(resp.body, "{\"hello\": \"world\"}");
    assert_string_equal(resp.content_type, "application/json");
    assert_string_equal(json_string_value(json_object_get(resp.headers, "x-twice")), "a, b");
    http_response_deinit(&resp);
    http_client_free(c);
}

static void test_post_body_and_headers(void **state)
{
    (void)state;
    http_client_t *c = client(true);
    http_header_t h[] = {{"X-Api-Key", "k123"}, {"Content-Type", "application/json"},
                         {"User-Agent", "mine/1"}};
    http_request_t req = {.method = "POST", .url = url("/ok"), .headers = h, .n_headers = 3,
                          .body = "{\"a\":1}", .body_len = 7, .timeout_ms = 5000,
                          .max_response_bytes = 1 << 20, .username = "u", .password = "p"};
    http_response_t resp;
    assert_int_equal(http_perform(c, &req, &resp, NULL), 0);
    pthread_mutex_lock(&last_mu);
    assert_non_null(strstr(last_request, "POST /ok HTTP/1.1"));
    assert_non_null(strstr(last_request, "X-Api-Key: k123"));
    assert_non_null(strstr(last_request, "User-Agent: mine/1")); /* the task's own, alone */
    assert_null(strstr(last_request, "braid/"));
    assert_non_null(strstr(last_request, "Authorization: Basic dTpw")); /* u:p */
    assert_non_null(strstr(last_request, "\r\n\r\n{\"a\":1}"));
    assert_null(strstr(last_request, "Expect:"));
    pthread_mutex_unlock(&last_mu);
    http_response_deinit(&resp);

    http_header_t bad[] = {{"X-Evil", "a\r\nInjected: 1"}};
    req.headers = bad;
    req.n_headers = 1;
    err_t err = {0};
    assert_int_equal(http_perform(c, &req, &resp, &err), BR_EINPUT_INVALID);
    http_response_deinit(&resp);
    err_clear(&err);
    http_client_free(c);
}

static void test_guard_refuses_before_connecting(void **state)
{
    (void)state;
    http_client_t *c = client(false);
    int before = atomic_load(&accepted);
    const char *hosts[] = {"127.0.0.1", "2130706433", "0x7f000001", "127.1", "localhost",
                           "[::ffff:127.0.0.1]", "user@127.0.0.1"};
    for (size_t i = 0; i < sizeof hosts / sizeof hosts[0]; i++) {
        char u[128];
        snprintf(u, sizeof u, "http://%s:%d/ok", hosts[i], port);
        http_response_t resp;
        err_t err = {0};
        assert_int_equal(get(c, u, 1 << 20, 3000, &resp, &err), BR_EBLOCKED);
        assert_non_null(strstr(err.msg, "address guard"));
        assert_int_equal(resp.status, 0);
        http_response_deinit(&resp);
        err_clear(&err);
    }
    assert_int_equal(atomic_load(&accepted), before);
    http_client_free(c);
}

static void test_redirects(void **state)
{
    (void)state;
    http_client_t *c = client(true);
    http_response_t resp;
    err_t err = {0};
    assert_int_equal(get(c, url("/hop"), 1 << 20, 5000, &resp, &err), 0);
    assert_int_equal(resp.status, 200);
    assert_int_equal(resp.redirects, 1);
    http_response_deinit(&resp);

    /* 127.0.0.2 is loopback too, but only 127.0.0.1/32 is allowed. */
    assert_int_equal(get(c, url("/to-blocked"), 1 << 20, 5000, &resp, &err), BR_EBLOCKED);
    http_response_deinit(&resp);
    err_clear(&err);
    assert_int_equal(get(c, url("/to-file"), 1 << 20, 5000, &resp, &err), BR_EBLOCKED);
    http_response_deinit(&resp);
    err_clear(&err);

    http_request_t req = {.method = "GET", .url = url("/hop"), .timeout_ms = 5000,
                          .max_response_bytes = 1 << 20, .follow_redirects = false};
    assert_int_equal(http_perform(c, &req, &resp, NULL), 0);
    assert_int_equal(resp.status, 301);
    assert_string_equal(json_string_value(json_object_get(resp.headers, "location")), "/ok");
    http_response_deinit(&resp);
    http_client_free(c);
}

static void test_caps_and_timeouts(void **state)
{
    (void)state;
    http_client_t *c = client(true);
    http_response_t resp;
    err_t err = {0};
    assert_int_equal(get(c, url("/big"), 1000, 5000, &resp, &err), BR_ERESPONSE_TOO_LARGE);
    http_response_deinit(&resp);
    err_clear(&err);
    assert_int_equal(get(c, url("/stream"), 5000, 5000, &resp, &err), BR_ERESPONSE_TOO_LARGE);
    http_response_deinit(&resp);
    err_clear(&err);
    assert_int_equal(get(c, url("/big"), 100000, 5000, &resp, &err), 0);
    assert_int_equal(resp.body_len, 100000);
    http_response_deinit(&resp);

    int64_t t0 = clock_mono_ms();
    assert_int_equal(get(c, url("/slow"), 1 << 20, 300, &resp, &err), BR_ETIMEOUT);
    assert_true(clock_mono_ms() - t0 < 2500);
    http_response_deinit(&resp);
    err_clear(&err);
    http_client_free(c);
}

static int stop_now(void *ctx)
{
    return clock_mono_ms() >= *(int64_t *)ctx ? BR_ECANCELLED : 0;
}

static void test_cancel_in_flight(void **state)
{
    (void)state;
    http_client_t *c = client(true);
    int64_t at = clock_mono_ms() + 200;
    http_request_t req = {.method = "GET", .url = url("/slow"), .timeout_ms = 10000,
                          .max_response_bytes = 1 << 20, .should_stop = stop_now, .stop_ctx = &at};
    http_response_t resp;
    err_t err = {0};
    assert_int_equal(http_perform(c, &req, &resp, &err), BR_ECANCELLED);
    assert_true(clock_mono_ms() - at < 1500);
    http_response_deinit(&resp);
    err_clear(&err);
    http_client_free(c);
}

static void test_url_with_query(void **state)
{
    (void)state;
    json_t *q = json_pack("{s:s, s:i, s:n}", "q", "a b&c=d/é", "n", 5, "empty");
    err_t err = {0};
    char *u = http_url_with_query("https://api.example.com/x?keep=1", q, &err);
    assert_non_null(u);
    assert_string_equal(u, "https://api.example.com/x?keep=1&q=a+b%26c%3dd%2f%c3%a9&n=5&empty=");
    free(u);
    assert_null(http_url_with_query("file:///etc/passwd", NULL, &err));
    assert_int_equal(err.code, BR_EBLOCKED);
    assert_non_null(strstr(err.msg, "file"));
    err_clear(&err);
    assert_null(http_url_with_query("gopher://x/", NULL, &err));
    assert_int_equal(err.code, BR_EBLOCKED);
    err_clear(&err);
    assert_null(http_url_with_query("not a url", NULL, &err));
    assert_int_equal(err.code, BR_EINPUT_INVALID);
    err_clear(&err);
    /* Nothing to add and nothing to encode: the URL goes out as written. */
    json_t *none = json_object();
    u = http_url_with_query("https://api.example.com/x/y?keep=1&a=%20", none, &err);
    assert_string_equal(u, "https://api.example.com/x/y?keep=1&a=%20");
    free(u);
    /* Anything else takes libcurl's parser: a space is refused there, a scheme in capitals is
     * written back in lower case. */
    assert_null(http_url_with_query("http://exa mple.com/", none, &err));
    assert_int_equal(err.code, BR_EINPUT_INVALID);
    err_clear(&err);
    u = http_url_with_query("HTTP://api.example.com/", none, &err);
    assert_string_equal(u, "http://api.example.com/");
    free(u);
    json_decref(none);
    json_decref(q);
}

/* A pooled handle comes back configured from a plain GET and reset from anything else: what a
 * request set (method, body, credentials, headers, a size cap) never reaches the next one. One
 * idle handle, so every request here takes the same one. */
static void test_pooled_handle_carries_nothing_over(void **state)
{
    (void)state;
    guard_t *g = guard_new();
    assert_int_equal(guard_allow_cidr(g, "127.0.0.1/32", NULL), 0);
    http_client_config_t cfg = {.connect_timeout_ms = 2000, .max_idle_connections = 1};
    http_client_t *c = http_client_new(&cfg, g);
    http_response_t resp;
    err_t err = {0};

    http_header_t h[] = {{"X-Api-Key", "k123"}};
    http_request_t post = {.method = "POST", .url = url("/ok"), .headers = h, .n_headers = 1,
                           .body = "{\"a\":1}", .body_len = 7, .timeout_ms = 5000,
                           .max_response_bytes = 1 << 20, .username = "u", .password = "p"};
    assert_int_equal(http_perform(c, &post, &resp, NULL), 0);
    http_response_deinit(&resp);
    /* A capped GET, then plain ones: the cap and the POST's settings are gone. */
    assert_int_equal(get(c, url("/big"), 1000, 5000, &resp, &err), BR_ERESPONSE_TOO_LARGE);
    http_response_deinit(&resp);
    err_clear(&err);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(get(c, url("/big"), 1 << 20, 5000, &resp, &err), 0);
        assert_int_equal(resp.body_len, 100000);
        http_response_deinit(&resp);
        assert_int_equal(get(c, url("/ok"), 1 << 20, 5000, &resp, &err), 0);
        assert_int_equal(resp.status, 200);
        http_response_deinit(&resp);
        pthread_mutex_lock(&last_mu);
        assert_non_null(strstr(last_request, "GET /ok HTTP/1.1"));
        assert_null(strstr(last_request, "Authorization"));
        assert_null(strstr(last_request, "X-Api-Key"));
        assert_null(strstr(last_request, "Content-Length"));
        assert_non_null(strstr(last_request, "User-Agent: braid/"));
        pthread_mutex_unlock(&last_mu);
    }
    /* HEAD asks for no body; the GET after it gets one again. */
    http_request_t head = {.method = "HEAD", .url = url("/ok"), .timeout_ms = 5000,
                           .max_response_bytes = 1 << 20};
    assert_int_equal(http_perform(c, &head, &resp, NULL), 0);
    assert_int_equal(resp.body_len, 0);
    http_response_deinit(&resp);
    assert_int_equal(get(c, url("/ok"), 1 << 20, 5000, &resp, &err), 0);
    assert_string_equal(resp.body, "{\"hello\": \"world\"}");
    http_response_deinit(&resp);
    http_client_free(c);
}

/* ---- the outbound loop ------------------------------------------------------------------- */

typedef struct loop_job {
    http_client_t *c;
    char url[128];
    int64_t timeout_ms;
    int64_t stop_at;  /* should_stop cancels from then on; 0 = never */
    int64_t sleep_ms; /* a fiber_sleep_ms before the request; -1 = no request after it */
    bool on_loop;
    int rc;
    long status;
    int64_t ended; /* monotonic ms */
    atomic_int *done;
} loop_job_t;

static void loop_job(void *arg)
{
    loop_job_t *j = arg;
    j->on_loop = http_loop_here() && fiber_current() != NULL;
    if (j->sleep_ms)
        fiber_sleep_ms(j->sleep_ms > 0 ? j->sleep_ms : -j->sleep_ms);
    if (j->sleep_ms >= 0) {
        http_request_t req = {.method = "GET", .url = j->url, .timeout_ms = j->timeout_ms,
                              .max_response_bytes = 1 << 20,
                              .should_stop = j->stop_at ? stop_now : NULL,
                              .stop_ctx = &j->stop_at};
        http_response_t resp;
        err_t err = {0};
        j->rc = http_perform(j->c, &req, &resp, &err);
        j->status = resp.status;
        http_response_deinit(&resp);
        err_clear(&err);
    }
    j->ended = clock_mono_ms();
    atomic_fetch_add(j->done, 1);
}

static void wait_for(atomic_int *done, int n)
{
    int64_t until = clock_mono_ms() + 10000;
    while (atomic_load(done) < n && clock_mono_ms() < until)
        clock_sleep_ms(5);
    assert_int_equal(atomic_load(done), n);
}

/* Eight requests of 300 ms each, from eight jobs of one loop: their waits overlap on the
 * loop's one thread, and every job runs on a fiber there. */
static void test_loop_overlaps_requests(void **state)
{
    (void)state;
    http_client_t *c = client(true);
    http_loop_t *l = http_loop_new(256 * 1024, 8);
    atomic_int done = 0;
    loop_job_t jobs[8];
    int64_t t0 = clock_mono_ms();
    for (int i = 0; i < 8; i++) {
        jobs[i] = (loop_job_t){.c = c, .timeout_ms = 5000, .done = &done};
        snprintf(jobs[i].url, sizeof jobs[i].url, "%s", url("/pause"));
        err_t err = {0};
        assert_int_equal(http_loop_submit(l, loop_job, &jobs[i], &err), 0);
    }
    wait_for(&done, 8);
    assert_true(clock_mono_ms() - t0 < 8 * 300 / 2);
    for (int i = 0; i < 8; i++) {
        assert_true(jobs[i].on_loop);
        assert_int_equal(jobs[i].rc, 0);
        assert_int_equal(jobs[i].status, 200);
    }
    http_loop_free(l);
    http_client_free(c);
}

/* A sleeping job leaves the loop to the others; a job's cancellation and its timeout end its
 * request in flight on the loop as on a thread. */
static void test_loop_sleep_cancel_timeout(void **state)
{
    (void)state;
    http_client_t *c = client(true);
    http_loop_t *l = http_loop_new(256 * 1024, 8);
    atomic_int done = 0;
    int64_t t0 = clock_mono_ms();
    loop_job_t sleeper = {.c = c, .sleep_ms = -400, .done = &done};
    loop_job_t quick = {.c = c, .timeout_ms = 5000, .done = &done};
    loop_job_t cancelled = {.c = c, .timeout_ms = 10000, .stop_at = t0 + 200, .done = &done};
    loop_job_t timed_out = {.c = c, .timeout_ms = 300, .done = &done};
    snprintf(quick.url, sizeof quick.url, "%s", url("/ok"));
    snprintf(cancelled.url, sizeof cancelled.url, "%s", url("/slow"));
    snprintf(timed_out.url, sizeof timed_out.url, "%s", url("/slow"));
    loop_job_t *all[] = {&sleeper, &quick, &cancelled, &timed_out};
    for (int i = 0; i < 4; i++) {
        err_t err = {0};
        assert_int_equal(http_loop_submit(l, loop_job, all[i], &err), 0);
    }
    wait_for(&done, 4);
    assert_true(sleeper.ended - t0 >= 400);
    assert_true(quick.ended < sleeper.ended);
    assert_int_equal(quick.rc, 0);
    assert_int_equal(quick.status, 200);
    assert_int_equal(cancelled.rc, BR_ECANCELLED);
    assert_true(cancelled.ended - t0 < 1500);
    assert_int_equal(timed_out.rc, BR_ETIMEOUT);
    assert_true(timed_out.ended - t0 < 2500);
    http_loop_free(l);
    http_client_free(c);
}

typedef struct family {
    http_client_t *c;
    int left;      /* children not finished */
    void *parent;  /* the parent job, parked until they are */
    long status[3];
    int next;      /* the child to start next */
    int64_t ended; /* when the parent went on */
    atomic_int *done;
} family_t;

static void child(void *arg)
{
    family_t *fam = arg;
    int me = fam->next++;
    http_request_t req = {.method = "GET", .url = url("/pause"), .timeout_ms = 5000,
                          .max_response_bytes = 1 << 20};
    http_response_t resp;
    err_t err = {0};
    if (http_perform(fam->c, &req, &resp, &err) == 0)
        fam->status[me] = resp.status;
    http_response_deinit(&resp);
    err_clear(&err);
    if (--fam->left == 0)
        http_loop_wake(fam->parent);
}

static void parent(void *arg)
{
    family_t *fam = arg;
    for (int i = 0; i < 3; i++)
        if (http_loop_spawn(child, fam) == 0)
            fam->left++;
    fam->parent = http_loop_self();
    while (fam->left > 0)
        http_loop_park();
    fam->ended = clock_mono_ms();
    atomic_fetch_add(fam->done, 1);
}

/* A job spawns three more beside it on its loop and parks until they have all answered: their
 * 300 ms requests overlap, and the last one to finish wakes it. */
static void test_loop_spawn_park_wake(void **state)
{
    (void)state;
    http_client_t *c = client(true);
    http_loop_t *l = http_loop_new(256 * 1024, 8);
    atomic_int done = 0;
    family_t fam = {.c = c, .done = &done};
    int64_t t0 = clock_mono_ms();
    err_t err = {0};
    assert_int_equal(http_loop_submit(l, parent, &fam, &err), 0);
    wait_for(&done, 1);
    for (int i = 0; i < 3; i++)
        assert_int_equal(fam.status[i], 200);
    assert_true(fam.ended - t0 >= 300);
    assert_true(fam.ended - t0 < 3 * 300);
    http_loop_free(l);
    http_client_free(c);
}

static void computes(void *arg)
{
    loop_job_t *j = arg;
    int64_t until = clock_mono_ms() + 300;
    while (clock_mono_ms() < until)
        http_loop_share(); /* a job busy for 300 ms without waiting, sharing the thread */
    j->ended = clock_mono_ms();
    atomic_fetch_add(j->done, 1);
}

/* A job that computes for long without waiting lets the loop's other jobs run now and then:
 * a request started beside it ends long before it does. */
static void test_loop_share(void **state)
{
    (void)state;
    http_client_t *c = client(true);
    http_loop_t *l = http_loop_new(256 * 1024, 8);
    atomic_int done = 0;
    loop_job_t busy = {.done = &done};
    loop_job_t quick = {.c = c, .timeout_ms = 5000, .done = &done};
    snprintf(quick.url, sizeof quick.url, "%s", url("/ok"));
    err_t err = {0};
    assert_int_equal(http_loop_submit(l, computes, &busy, &err), 0);
    assert_int_equal(http_loop_submit(l, loop_job, &quick, &err), 0);
    wait_for(&done, 2);
    assert_int_equal(quick.rc, 0);
    assert_int_equal(quick.status, 200);
    assert_true(quick.ended + 100 < busy.ended);
    http_loop_share(); /* not a job: returns at once */
    http_loop_free(l);
    http_client_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_json),
        cmocka_unit_test(test_post_body_and_headers),
        cmocka_unit_test(test_guard_refuses_before_connecting),
        cmocka_unit_test(test_redirects),
        cmocka_unit_test(test_caps_and_timeouts),
        cmocka_unit_test(test_cancel_in_flight),
        cmocka_unit_test(test_url_with_query),
        cmocka_unit_test(test_pooled_handle_carries_nothing_over),
        cmocka_unit_test(test_loop_overlaps_requests),
        cmocka_unit_test(test_loop_sleep_cancel_timeout),
        cmocka_unit_test(test_loop_spawn_park_wake),
        cmocka_unit_test(test_loop_share),
    };
    return cmocka_run_group_tests(tests, start_upstream, stop_upstream);
}
