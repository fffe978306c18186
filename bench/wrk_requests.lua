-- wrk sends the requests of a file in turn and checks every answer (bench/wrk_load.py writes both).
--
--     wrk -t1 -c16 -d10s -s wrk_requests.lua http://127.0.0.1:8000 -- requests.tsv expected
--
-- requests.tsv holds one request per line: METHOD, a tab, the path with its query, a tab, the
-- form body (empty for none). An answer is right when its status is 200 and its body contains
-- the bytes of the file named by the second argument. done() prints one JSON line, with the
-- first wrong answer.

local requests, next_index = {}, 0
sent, wrong, wrapped, first_wrong = 0, 0, 0, ""
local expected

function init(args)
  for line in io.lines(args[1]) do
    local method, path, body = line:match("^(%u+)\t([^\t]*)\t(.*)$")
    if body == "" then
      requests[#requests + 1] = wrk.format(method, path)
    else
      local headers = { ["Content-Type"] = "application/x-www-form-urlencoded" }
      requests[#requests + 1] = wrk.format(method, path, headers, body)
    end
  end
  local file = assert(io.open(args[2], "rb"))
  expected = file:read("*a")
  file:close()
end

-- wrk calls request() once before the run, on the first thread, to check what it returns, and
-- never sends that one: the first call therefore takes no request from the list. Only right
-- with one thread (-t1), which is how bench/wrk_load.py runs it.
local verified = false

function request()
  if not verified then
    verified = true
    return requests[1]
  end
  next_index = next_index + 1
  if next_index > #requests then
    next_index, wrapped = 1, wrapped + 1
  end
  sent = sent + 1
  return requests[next_index]
end

function response(status, headers, body)
  if status ~= 200 or not body:find(expected, 1, true) then
    if wrong == 0 then
      -- Kept printable inside a JSON string: quotes, backslashes and control characters become "?".
      first_wrong = (status .. " " .. body:sub(1, 200)):gsub('[%c"\\]', "?")
    end
    wrong = wrong + 1
  end
end

local threads = {}

function setup(thread)
  threads[#threads + 1] = thread
end

function done(summary, latency, _)
  local wrong_total, wrapped_total, sent_total, first = 0, 0, 0, ""
  for _, thread in ipairs(threads) do
    wrong_total = wrong_total + thread:get("wrong")
    wrapped_total = wrapped_total + thread:get("wrapped")
    sent_total = sent_total + thread:get("sent")
    if first == "" then
      first = thread:get("first_wrong")
    end
  end
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"wrong":%d,"wrapped":%d,"sent":%d,'
      .. '"socket_errors":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f,"first_wrong":"%s"}\n',
    summary.requests, summary.duration, wrong_total, wrapped_total, sent_total,
    e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean, first
  ))
end
