-- Prints one JSON line with the figures the benchmark report needs
-- (wrk's own summary lacks p99.9). Latencies are in microseconds.
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'JSON {"requests":%d,"duration_us":%d,"p50":%d,"p99":%d,"p999":%d,"errors":%d,"non2xx":%d}\n',
    summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9),
    e.connect + e.read + e.write + e.timeout, e.status))
end
