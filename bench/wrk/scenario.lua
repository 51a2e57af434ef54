-- wrk script for the single-document scenarios, shared by every server.
--
--   wrk ... -s scenario.lua URL -- put PREFIX TAG   PUT PREFIX<TAG>-<thread>-<n>, a new id each time
--   wrk ... -s scenario.lua URL -- get PREFIX COUNT GET PREFIXget-<i>, i random in [0, COUNT)
--
-- PREFIX is the path up to the id ("/db/" for CouchDB, "/k/" for the ceiling).
-- Headers (auth, content type) come from wrk's -H flags. done() prints one
-- line "BENCH_JSON {...}" with the totals and a histogram of status codes,
-- which bench/run.mjs parses.

local threads = {}
local next_tid = 0

function setup(thread)
  thread:set("tid", next_tid)
  next_tid = next_tid + 1
  table.insert(threads, thread)
end

function init(args)
  mode, prefix = args[1], args[2]
  tag = args[3] or ""
  count = tonumber(args[3]) or 1000
  n = 0
  statuses = {}
  math.randomseed(os.time() + tid * 7919)
end

function request()
  n = n + 1
  if mode == "put" then
    local body = string.format('{"type":"bench","n":%d,"note":"a small JSON document"}', n)
    return wrk.format("PUT", string.format("%s%s-%d-%d", prefix, tag, tid, n), nil, body)
  else
    return wrk.format("GET", string.format("%sget-%04d", prefix, math.random(0, count - 1)))
  end
end

function response(status, headers, body)
  local key = tostring(status)
  statuses[key] = (statuses[key] or 0) + 1
end

function done(summary, latency, requests)
  local merged = {}
  for _, thread in ipairs(threads) do
    for code, c in pairs(thread:get("statuses") or {}) do
      merged[code] = (merged[code] or 0) + c
    end
  end
  local parts = {}
  for code, c in pairs(merged) do
    table.insert(parts, string.format('"%s":%d', code, c))
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"p50":%d,"p99":%d,"max":%d},"statuses":{%s}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max,
    table.concat(parts, ",")))
end
