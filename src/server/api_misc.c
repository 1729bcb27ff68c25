/* api_misc.c - GET /graph, GET /healthz (no token needed), GET /metrics (Prometheus text). */
#include "server/server_internal.h"

#include "core/metrics.h"

#include <string.h>

/* GET /graph -> the static call graph of the latest versions. */
void api_graph_get(request_t *req)
{
    json_t *g = NULL;
    err_t err = {0};
    int rc = engine_graph(req->srv->eng, &g, &err);
    http_reply_result(req, rc, g, &err);
}

/* GET /healthz -> {"status": "ok"}. */
void api_healthz_get(request_t *req)
{
    static const char ok[] = "{\"status\":\"ok\"}\n";
    http_reply_text(req, 200, "application/json", ok, sizeof ok - 1);
}

/* GET /metrics: the queue depth is read from the store now, everything else is kept live. */
void api_metrics_get(request_t *req)
{
    json_t *counts = NULL;
    if (store_queue_counts(req->srv->st, &counts, NULL) == 0) {
        static const char *const statuses[] = {"scheduled", "queued", "running"};
        for (size_t i = 0; i < 3; i++)
            metrics_queue_depth(statuses[i],
                                (double)json_integer_value(json_object_get(counts, statuses[i])));
    }
    json_decref(counts);
    buf_t b = BUF_INIT;
    metrics_render(&b);
    http_reply_text(req, 200, "text/plain; version=0.0.4; charset=utf-8", b.data ? b.data : "",
                    b.len);
    buf_deinit(&b);
}
