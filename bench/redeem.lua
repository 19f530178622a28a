-- wrk script for bench/redeem.py and bench/workers.py:
--   wrk ... -s bench/redeem.lua URL -- LINES_FILE KEY_PREFIX PATH
-- LINES_FILE holds one request a line: "Authorization header<TAB>JSON body" (the header
-- may be empty). Requests go round the lines, each with a fresh Idempotency-Key
-- (KEY_PREFIX, the thread's number, a counter). Any answer but 201 counts as unexpected.
-- The summary is printed as one line: BENCH {json}.

local threads = {}

function setup(thread)
  thread:set("number", #threads + 1)
  table.insert(threads, thread)
end

local lines = {}
local counter = 0
local prefix = ""
local path = "/"
unexpected = 0
shown = 0

function init(args)
  for line in io.lines(args[1]) do
    local auth, body = line:match("^([^\t]*)\t(.*)$")
    if body then
      lines[#lines + 1] = { auth, body }
    end
  end
  prefix = args[2] .. number .. "-"
  path = args[3]
  counter = (number - 1) * math.floor(#lines / 8)
end

function request()
  counter = counter + 1
  local line = lines[(counter % #lines) + 1]
  local headers = {
    ["Content-Type"] = "application/json",
    ["Idempotency-Key"] = prefix .. counter,
  }
  if line[1] ~= "" then
    headers["Authorization"] = line[1]
  end
  return wrk.format("POST", path, headers, line[2])
end

function response(status, headers, body)
  if status ~= 201 then
    unexpected = unexpected + 1
    if shown < 3 then
      shown = shown + 1
      io.stderr:write("unexpected " .. status .. ": " .. body .. "\n")
    end
  end
end

function done(summary, latency, requests)
  local unexpected_total = 0
  for _, thread in ipairs(threads) do
    unexpected_total = unexpected_total + thread:get("unexpected")
  end
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout
  io.write(string.format(
    'BENCH {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"unexpected":%d,"errors":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    unexpected_total, errors))
end
