-- bench/wrk.lua: the request and the report for scripts/bench's wrk runs.
--
-- Environment (read by wrk's LuaJIT):
--   BENCH_METHOD   GET (default) or POST
--   BENCH_BODY     the request body (POST)
--   BENCH_CTYPE    its Content-Type (default application/x-www-form-urlencoded)
--   BENCH_HX       "1": send HX-Request: true (htmx's header, as the page does)
-- At the end it prints one machine-readable line:
--   BENCH requests=N duration_us=N rps=F p50_us=N p90_us=N p99_us=N max_us=N non2xx=N
--         connect_errors=N read_errors=N write_errors=N timeouts=N

local method = os.getenv("BENCH_METHOD") or "GET"
wrk.method = method
if method == "POST" then
    wrk.body = os.getenv("BENCH_BODY") or ""
    wrk.headers["Content-Type"] = os.getenv("BENCH_CTYPE") or "application/x-www-form-urlencoded"
end
if os.getenv("BENCH_HX") == "1" then
    wrk.headers["HX-Request"] = "true"
end

done = function(summary, latency, requests)
    local s = summary
    local rps = 0
    if s.duration > 0 then rps = s.requests / (s.duration / 1e6) end
    io.write(string.format(
        "BENCH requests=%d duration_us=%d rps=%.1f p50_us=%d p90_us=%d p99_us=%d max_us=%d non2xx=%d " ..
        "connect_errors=%d read_errors=%d write_errors=%d timeouts=%d\n",
        s.requests, s.duration, rps, latency:percentile(50), latency:percentile(90), latency:percentile(99),
        latency.max, s.errors.status, s.errors.connect, s.errors.read, s.errors.write, s.errors.timeout))
end
