-- done(): print wrk's summary as one JSON line that bench/load.py reads.
-- Latencies are wrk's own histogram, in microseconds, over all threads.

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    "BENCH_RESULT {\"requests\":%d,\"duration_us\":%d,\"p50_us\":%d,\"p99_us\":%d,"
      .. "\"mean_us\":%.1f,\"max_us\":%d,\"connect_errors\":%d,\"read_errors\":%d,"
      .. "\"write_errors\":%d,\"timeouts\":%d,\"non_2xx\":%d}\n",
    summary.requests, summary.duration, latency:percentile(50),
    latency:percentile(99), latency.mean, latency.max, errors.connect,
    errors.read, errors.write, errors.timeout, errors.status
  ))
end
