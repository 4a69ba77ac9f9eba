-- wrk script for bench/bench_api.py.
--
-- The request comes from the environment so one script serves every measurement:
--   BENCH_METHOD      GET (default) or POST
--   BENCH_BODY        the request body for POST
--   BENCH_AUTH        the bearer token sent on every request
-- `done` prints one machine-readable line (prefixed "BENCH_JSON ") with exact numbers, so the
-- driver does not have to parse wrk's rounded human output.

local method = os.getenv("BENCH_METHOD") or "GET"
local body = os.getenv("BENCH_BODY")
local auth = os.getenv("BENCH_AUTH")

wrk.method = method
if auth then
   wrk.headers["Authorization"] = "Bearer " .. auth
end
if method == "POST" then
   wrk.body = body or ""
   wrk.headers["Content-Type"] = "application/json"
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'BENCH_JSON {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
      '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
      '"latency_us": {"p50": %d, "p75": %d, "p90": %d, "p99": %d, "max": %d, "mean": %.1f}}\n',
      summary.requests, summary.duration, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(75), latency:percentile(90),
      latency:percentile(99), latency.max, latency.mean))
end
