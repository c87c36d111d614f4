-- Start a new businessKey with every request.
-- Arguments: the start path, then a tag that is unique to this measurement.
-- A random leading part spreads the keys over the whole unique index, as order
-- numbers or UUIDs would; the tag, thread and counter make each key unique.

-- the report is shared with the other script, next to this one
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "report.lua")

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
