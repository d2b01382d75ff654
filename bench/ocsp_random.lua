-- wrk script for bench/ocsp.sh: checked answers, keep-alive.
--   OCSP_REQS=file   one DER OCSPRequest a line (hex); each request POSTs one picked at random.
--                    An answer counts as good only if it is HTTP 200 and a successful OCSP
--                    response (RFC 6960 4.2.1: OCSPResponse SEQUENCE, responseStatus 0, with a body).
--   STATIC_LEN=n     plain GET of the URL; good only if HTTP 200 with exactly n bytes of body.
-- done() prints one WRKSTAT line; `bad` counts the answers that were not good.

-- No address probe (an empty connection wedges `openssl ocsp`; see bench/ocsp.lua).
function wrk.resolve(host, service)
  wrk.addrs = wrk.lookup(host, service)
end

local threads = {}
function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

local reqs = {}
local static_len = tonumber(os.getenv("STATIC_LEN") or "")
bad = 0
good = 0

function init(args)
  local file = os.getenv("OCSP_REQS")
  if file and file ~= "" then
    local headers = { ["Content-Type"] = "application/ocsp-request" }
    for line in io.lines(file) do
      local der = line:gsub("%x%x", function(h) return string.char(tonumber(h, 16)) end)
      reqs[#reqs + 1] = wrk.format("POST", wrk.path, headers, der)
    end
    math.randomseed(os.time() * 1000 + id)
  end
end

if os.getenv("OCSP_REQS") and os.getenv("OCSP_REQS") ~= "" then
  function request()
    return reqs[math.random(#reqs)]
  end
end

local function ocsp_ok(body)
  if not body or #body < 100 or body:byte(1) ~= 0x30 then return false end
  local l = body:byte(2)
  local off = 3
  if l >= 0x80 then off = 3 + (l - 0x80) end
  return body:byte(off) == 0x0a and body:byte(off + 1) == 0x01 and body:byte(off + 2) == 0x00
end

function response(status, headers, body)
  local ok = status == 200
  if ok then
    if static_len then ok = #body == static_len else ok = ocsp_ok(body) end
  end
  if ok then good = good + 1 else bad = bad + 1 end
end

function done(summary, latency, requests)
  local nbad, ngood = 0, 0
  for _, t in ipairs(threads) do
    nbad = nbad + (t:get("bad") or 0)
    ngood = ngood + (t:get("good") or 0)
  end
  local e = summary.errors
  local secs = summary.duration / 1e6
  io.write(string.format(
    "WRKSTAT requests=%d good=%d bad=%d secs=%.2f rps=%.0f p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f max_ms=%.2f " ..
    "err_connect=%d err_read=%d err_write=%d err_timeout=%d non2xx=%d\n",
    summary.requests, ngood, nbad, secs, ngood / secs,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, e.connect, e.read, e.write, e.timeout, e.status))
end
