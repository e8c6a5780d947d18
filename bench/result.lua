-- wrk script shared by the bench scripts: one RESULT line per run, with req/s, p50 and p99
-- in microseconds; answers other than 200 and socket errors are counted, not hidden.
-- Scripts that need their own request() append to or take pieces of this file.
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init() bad = 0 end
function response(status) if status ~= 200 then bad = bad + 1 end end
function done(summary, latency)
  local n = 0
  for _, t in ipairs(threads) do n = n + t:get("bad") end
  io.write(string.format("RESULT rps=%.2f p50_us=%d p99_us=%d non2xx=%d errors=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50), latency:percentile(99), n,
    summary.errors.connect + summary.errors.read + summary.errors.timeout))
end
