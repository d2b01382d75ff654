-- wrk script for the OCSP benchmarks (bench/run.sh).
-- With OCSP_REQ set to a DER OCSPRequest file: POST it as application/ocsp-request.
-- Without it: plain GET of the URL given to wrk (the GET form, /ocsp/<url-encoded base64>).
-- WRK_CLOSE=1 adds "Connection: close" (a new TCP connection per request).
-- done() prints one WRKSTAT line that bench/run.sh turns into a table row.

-- wrk's default wrk.resolve() probes each address with a connection that it closes without
-- sending anything. `openssl ocsp` (3.0.22 here) never recovers from such a connection: it
-- spins at 100% CPU on the EOF and answers nobody again (openssl/openssl issues 31129 and
-- 23934). Skip the probe so the peer can be measured at all; certmate does not need it either.
function wrk.resolve(host, service)
  wrk.addrs = wrk.lookup(host, service)
end
local req_file = os.getenv("OCSP_REQ")
if req_file and req_file ~= "" then
  local f = assert(io.open(req_file, "rb"))
  wrk.method = "POST"
  wrk.body = f:read("*a")
  f:close()
  wrk.headers["Content-Type"] = "application/ocsp-request"
end
if os.getenv("WRK_CLOSE") == "1" then
  wrk.headers["Connection"] = "close"
end

function done(summary, latency, requests)
  local e = summary.errors
  local secs = summary.duration / 1e6
  io.write(string.format(
    "WRKSTAT requests=%d secs=%.2f rps=%.0f p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f max_ms=%.2f " ..
    "err_connect=%d err_read=%d err_write=%d err_timeout=%d non2xx=%d\n",
    summary.requests, secs, summary.requests / secs,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, e.connect, e.read, e.write, e.timeout, e.status))
end
