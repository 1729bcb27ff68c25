-- wrk_count.lua - POSTs one JSON body (as wrk_post.lua) until this thread has had its share of
-- BENCH_TOTAL answers, then stops the thread: wrk sends a fixed number of requests instead of
-- running for a fixed time. Appends one JSON line of figures to BENCH_OUT, as wrk_post.lua does,
-- with the number of 2xx answers.
--
-- wrk itself still waits out its -d duration after every thread stopped: bench/async.sh watches
-- the server's counters and stops wrk once the answers are in, so the times come from there.
--
-- Environment: BENCH_BODY, BENCH_TOKEN, BENCH_OUT, BENCH_TAG (as wrk_post.lua); BENCH_TOTAL
-- (answers wanted over all threads); BENCH_THREADS (wrk's -t, to split BENCH_TOTAL).
wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY") or '{"n": 1}'
wrk.headers["Content-Type"] = "application/json"
local token = os.getenv("BENCH_TOKEN") or ""
if token ~= "" then
    wrk.headers["Authorization"] = "Bearer " .. token
end

local threads = {}
function setup(thread)
    table.insert(threads, thread)
end

local share = math.ceil(tonumber(os.getenv("BENCH_TOTAL") or "1000") /
                        tonumber(os.getenv("BENCH_THREADS") or "1"))
-- Globals, so that done() can read them from each thread with thread:get().
answered, ok = 0, 0
function response(status, headers, body)
    answered = answered + 1
    if status >= 200 and status < 300 then
        ok = ok + 1
    end
    if answered >= share then
        wrk.thread:stop()
    end
end

function done(summary, latency, requests)
    local oks = 0
    for _, t in ipairs(threads) do
        oks = oks + (t:get("ok") or 0)
    end
    local e = summary.errors
    local line = string.format(
        '{%s, "requests": %d, "ok": %d, "seconds": %.3f, "rps": %.1f, "p50_us": %d, ' ..
        '"p99_us": %d, "errors": {"connect": %d, "read": %d, "write": %d, "status": %d, ' ..
        '"timeout": %d}}\n',
        os.getenv("BENCH_TAG") or '"tag": null', summary.requests, oks, summary.duration / 1e6,
        summary.requests / (summary.duration / 1e6), latency:percentile(50),
        latency:percentile(99), e.connect, e.read, e.write, e.status, e.timeout)
    local out = os.getenv("BENCH_OUT")
    local f = out and io.open(out, "a") or io.stdout
    f:write(line)
    if f ~= io.stdout then
        f:close()
    end
end
