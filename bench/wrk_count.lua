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
dofile("bench/wrk_post.lua") -- the request, and write_line (wrk runs from the repository root)

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
    write_line(summary, latency, string.format('"ok": %d', oks))
end
