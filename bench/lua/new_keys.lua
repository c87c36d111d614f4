-- Start a new businessKey with every request.
-- Arguments: the start path, then a tag that is unique to this measurement.
-- A random leading part spreads the keys over the whole unique index, as order
-- numbers or UUIDs would; the tag, thread and counter make each key unique.

local threads_started = 0

function setup(thread)
  threads_started = threads_started + 1
  thread:set("thread_number", threads_started)
end

function init(args)
  start_path = args[1]
  tag = args[2]
  sent = 0
  math.randomseed(os.time() + thread_number * 7919)
  headers = { ["Content-Type"] = "application/json" }
end

function request()
  sent = sent + 1
  local key = string.format(
    "order-%08x-%s-%d-%d", math.random(0, 0x7fffffff), tag, thread_number, sent
  )
  return wrk.format("POST", start_path, headers, '{"businessKey":"' .. key .. '"}')
end

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
