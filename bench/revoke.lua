-- wrk script for bench/revoke.sh: each identifier REVOKE_PREFIX<i>, i in [REVOKE_FROM, REVOKE_TO],
-- revoked once by one request (the wrk threads split them by i mod threads). Every answer is
-- checked: an acknowledgement is a 200 whose body is the certificate with "revoked":true; anything
-- else is counted as bad. A thread stops when its share is answered (the remaining connections ask
-- GET /health meanwhile; not counted). wrk runs for its whole -d whatever the threads do, so each
-- thread appends "start|end <tid> <unix time>" to REVOKE_MARKS and bench/revoke.sh stops wrk (SIGINT)
-- once every thread has ended, and times the run from those marks. done() prints one REVOKESTAT line.
function wrk.resolve(host, service)
  wrk.addrs = wrk.lookup(host, service)
end

local threads = {}
local nthreads = tonumber(os.getenv("REVOKE_THREADS") or "1")
function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

local prefix = os.getenv("REVOKE_PREFIX") or "r-"
local from = tonumber(os.getenv("REVOKE_FROM") or "1")
local to = tonumber(os.getenv("REVOKE_TO") or "0")
local token = os.getenv("REVOKE_TOKEN") or ""
nextid, mine = 0, 0
acked, bad, sent = 0, 0, 0

local function mark(what)
  local f = io.popen("date +%s.%N")
  local t = f:read("*l")
  f:close()
  local out = io.open(os.getenv("REVOKE_MARKS") or "/dev/null", "a")
  out:write(what .. " " .. tid .. " " .. t .. "\n")
  out:close()
end

function init(args)
  nextid = from
  while nextid <= to and nextid % nthreads ~= tid do nextid = nextid + 1 end
  for i = from, to do if i % nthreads == tid then mine = mine + 1 end end
  wrk.headers["Authorization"] = "Bearer " .. token
  wrk.headers["Content-Type"] = "application/json"
  verifying = (tid == 0)
  mark("start")
end

-- wrk calls request() once on thread 0's state before the run, only to check the request parses
-- (script_verify_request): that call must not use up an identifier.
function request()
  if verifying then
    verifying = false
    return wrk.format("GET", "/health", nil, nil)
  end
  if nextid <= to then
    local path = "/api/client-certs/" .. prefix .. nextid .. "/revoke"
    nextid = nextid + nthreads
    sent = sent + 1
    return wrk.format("POST", path, nil, '{"reason":"keyCompromise"}')
  end
  return wrk.format("GET", "/health", nil, nil)
end

function response(status, headers, body)
  if body:find('"checks"', 1, true) then return end -- GET /health while the last ones finish
  if status == 200 and body:find('"revoked":true', 1, true) then acked = acked + 1 else bad = bad + 1 end
  if acked + bad == mine then
    mark("end")
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local a, b = 0, 0
  for _, t in ipairs(threads) do
    a = a + t:get("acked"); b = b + t:get("bad")
    if os.getenv("REVOKE_DEBUG") then io.write(string.format("thread %d: mine %d sent %d acked %d bad %d\n", t:get("tid"), t:get("mine"), t:get("sent"), t:get("acked"), t:get("bad"))) end
  end
  local secs = summary.duration / 1e6
  io.write(string.format(
    "REVOKESTAT acked=%d bad=%d secs=%.2f rps=%.0f p50_ms=%.2f p99_ms=%.2f max_ms=%.2f errors=%d\n",
    a, b, secs, a / secs, latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
