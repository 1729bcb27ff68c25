/* curl_multi.c - the ceiling of the outbound-over-HTTP benchmark: a bare libcurl multi loop
 * making N GET requests to one URL with C transfers in flight at once, each easy handle reused
 * (and so its keep-alive connection) as soon as its transfer ends. The same requests braid's
 * http tasks make in bench/outbound_http.sh, with nothing else around them.
 *
 *   curl_multi URL [N] [C]        defaults: 100000 requests, 32 transfers at once
 *
 * Prints one JSON line: {"mode": "curl_multi", "requests", "concurrency", "seconds", "rps",
 * "failed"}. Exits 1 when a request fails or answers other than 200.
 */
#include "core/clock.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>

static size_t discard(char *p, size_t s, size_t n, void *u)
{
    (void)p, (void)u;
    return s * n;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: curl_multi URL [N] [C]\n");
        return 2;
    }
    const char *url = argv[1];
    long n = argc > 2 ? atol(argv[2]) : 100000, c = argc > 3 ? atol(argv[3]) : 32;
    if (n < 1 || c < 1 || c > 4096) {
        fprintf(stderr, "curl_multi: N >= 1 and 1 <= C <= 4096\n");
        return 2;
    }
    if (c > n)
        c = n;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURLM *m = curl_multi_init();
    curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, c);
    CURL **h = calloc((size_t)c, sizeof *h);
    long started = 0, done = 0, failed = 0;
    int64_t t0 = clock_now_us();
    for (long i = 0; i < c; i++) {
        h[i] = curl_easy_init();
        curl_easy_setopt(h[i], CURLOPT_URL, url);
        curl_easy_setopt(h[i], CURLOPT_WRITEFUNCTION, discard);
        curl_easy_setopt(h[i], CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h[i], CURLOPT_PROXY, "");
        curl_multi_add_handle(m, h[i]);
        started++;
    }
    int running = 1;
    while (done < n) {
        curl_multi_perform(m, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(m, &left))) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            CURL *e = msg->easy_handle;
            long code = 0;
            curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
            if (msg->data.result != CURLE_OK || code != 200) {
                if (failed++ < 5)
                    fprintf(stderr, "curl_multi: %s, status %ld\n",
                            curl_easy_strerror(msg->data.result), code);
            }
            done++;
            curl_multi_remove_handle(m, e);
            if (started < n) { /* the same handle again: its connection is reused */
                curl_multi_add_handle(m, e);
                started++;
            }
        }
        if (done < n)
            curl_multi_poll(m, NULL, 0, 1000, NULL);
    }
    double s = (double)(clock_now_us() - t0) / 1e6;
    printf("{\"mode\": \"curl_multi\", \"requests\": %ld, \"concurrency\": %ld, \"seconds\": %.3f, "
           "\"rps\": %.0f, \"failed\": %ld}\n",
           n, c, s, (double)n / s, failed);
    for (long i = 0; i < c; i++)
        curl_easy_cleanup(h[i]);
    free(h);
    curl_multi_cleanup(m);
    curl_global_cleanup();
    return failed ? 1 : 0;
}
