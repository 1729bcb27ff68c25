-- wrk_post.lua - POSTs one JSON body with a bearer token, and on completion appends one JSON
-- line of figures to a file, so bench/http.sh reads numbers instead of wrk's text.
--
-- Environment: BENCH_BODY (the request body), BENCH_TOKEN (sent as "Authorization: Bearer",
-- omitted when empty), BENCH_OUT (the file to append to), BENCH_TAG (members copied into the
-- line as they are, e.g. "server":"braid","conns":32).
wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY") or '{"n": 1}'
wrk.headers["Content-Type"] = "application/json"
local token = os.getenv("BENCH_TOKEN") or ""
if token ~= "" then
    wrk.headers["Authorization"] = "Bearer " .. token
end

-- One JSON line of figures to BENCH_OUT (or stdout); EXTRA (may be nil) adds members, as
-- '"ok": 12'. summary.duration is in microseconds, as are the latency figures.
function write_line(summary, latency, extra)
    local e = summary.errors
    local line = string.format(
        '{%s, "requests": %d,%s "seconds": %.3f, "rps": %.1f, "p50_us": %d, "p90_us": %d, ' ..
        '"p99_us": %d, "max_us": %d, "errors": {"connect": %d, "read": %d, "write": %d, ' ..
        '"status": %d, "timeout": %d}}\n',
        os.getenv("BENCH_TAG") or '"tag": null', summary.requests,
        extra and (" " .. extra .. ",") or "", summary.duration / 1e6,
        summary.requests / (summary.duration / 1e6), latency:percentile(50),
        latency:percentile(90), latency:percentile(99), latency.max, e.connect, e.read, e.write,
        e.status, e.timeout)
    local out = os.getenv("BENCH_OUT")
    local f = out and io.open(out, "a") or io.stdout
    f:write(line)
    if f ~= io.stdout then
        f:close()
    end
end

function done(summary, latency, requests)
    write_line(summary, latency, nil)
end
