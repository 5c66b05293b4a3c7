-- wrk script of the ingest benchmark (bench/ingest.py): POSTs pre-signed recording-completed
-- callbacks, cycling through them, and prints wrk's figures as one JSON line.
--
-- Usage: wrk -t T ... -s wrk_callbacks.lua URL -- requests.txt T
-- requests.txt holds one callback per line: "<X-Twilio-Signature> <form-encoded body>".
-- Each of the T threads takes every T-th line, so no two threads send the same callback.

local requests = {}
local count = 0
local index = 0
local threads = 0

function setup(thread)
  thread:set("slot", threads)
  threads = threads + 1
end

function init(args)
  local path = wrk.path
  local stride = tonumber(args[2]) or 1
  local mine = slot or 0
  local number = 0
  for line in io.lines(args[1]) do
    if number % stride == mine then
      local space = string.find(line, " ", 1, true)
      count = count + 1
      requests[count] = wrk.format("POST", path, {
        ["Content-Type"] = "application/x-www-form-urlencoded",
        ["X-Twilio-Signature"] = string.sub(line, 1, space - 1),
        ["User-Agent"] = "TwilioProxy/1.1",
      }, string.sub(line, space + 1))
    end
    number = number + 1
  end
end

function request()
  index = index % count + 1
  return requests[index]
end

function done(summary, latency, _)
  local errors = summary.errors
  io.write(string.format(
    'BENCH-JSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect_errors":%d,' ..
    '"read_errors":%d,"write_errors":%d,"status_errors":%d,"timeouts":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, summary.bytes, errors.connect, errors.read,
    errors.write, errors.status, errors.timeout, latency:percentile(50),
    latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
