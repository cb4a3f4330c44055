-- wrk script of the redirect benchmark: sends GET requests for the paths listed (one per line) in the file given
-- after `--`, in order, cycling; the list is precomputed by bench/redirect.ts from a Zipf-like distribution.
-- Counts answers outside 300-399 (wrk itself only counts >= 400) and prints one JSON result line at the end.
-- Usage: wrk -t1 -c50 -d10s -s bench/wrk-paths.lua http://127.0.0.1:PORT -- paths.txt

local threads = {}

function setup(thread)
  thread:set("thread_index", #threads)
  table.insert(threads, thread)
end

local requests_list, count, position
non3xx = 0

function init(args)
  -- Formatted once here, so the per-request cost in wrk is a table lookup rather than string building.
  requests_list = {}
  for path in io.lines(args[1]) do
    requests_list[#requests_list + 1] = wrk.format("GET", path)
  end
  count = #requests_list
  if count == 0 then error("no paths in " .. tostring(args[1])) end
  -- Threads start at different places in the list so that they do not send the same sequence.
  position = (thread_index * 7919) % count
end

function request()
  position = position % count + 1
  return requests_list[position]
end

function response(status, headers, body)
  if status < 300 or status > 399 then non3xx = non3xx + 1 end
end

function done(summary, latency, requests)
  local non3xx_total = 0
  for _, thread in ipairs(threads) do non3xx_total = non3xx_total + thread:get("non3xx") end
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"durationUs":%d,"p50Us":%d,"p99Us":%d,"maxUs":%d,"non3xx":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d}}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.max,
    non3xx_total, e.connect, e.read, e.write, e.timeout))
end
