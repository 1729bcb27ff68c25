/* metrics.h - process-wide counters, gauges and histograms with labels, rendered in the
 * Prometheus text format. Knows nothing of the engine or the server: they report into it.
 * Every function is thread-safe; an update costs one mutex and one hash lookup. */
#ifndef BRAID_CORE_METRICS_H
#define BRAID_CORE_METRICS_H

#include "core/buf.h"

#include <stdint.h>

/* A run of INTEGRATION started (engine). */
void metrics_run_started(const char *integration);
/* A run of INTEGRATION finished with STATUS ("succeeded", "failed", "cancelled") after
 * DURATION_MS (engine). */
void metrics_run_finished(const char *integration, const char *status, int64_t duration_ms);

/* An HTTP request began (in-flight gauge + 1). */
void metrics_http_begin(void);
/* An HTTP request matched ROUTE (a route pattern, or "unknown") ended with STATUS after
 * SECONDS (in-flight gauge - 1). */
void metrics_http_end(const char *route, int status, double seconds);
/* An error answer with CODE ("not_found", ...) was written. */
void metrics_http_error(const char *code);

/* Set the queue-depth gauge for STATUS ("scheduled", "queued", "running") to VALUE; read from
 * the store at scrape time. */
void metrics_queue_depth(const char *status, double value);

/* Append every metric in the Prometheus text exposition format (0.0.4) to OUT. */
void metrics_render(buf_t *out);

/* Forget every value (tests). */
void metrics_reset(void);

#endif
