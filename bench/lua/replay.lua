-- Replay businessKeys that were recorded before the run, round robin.
-- Arguments: the start path, the keys' prefix and how many keys there are.
-- The body is the one the key was started with, so every request is a replay.

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
  prefix = args[2]
  count = tonumber(args[3])
  -- threads start at different keys, so they rarely ask for the same one at once
  position = (thread_number * 7919) % count
  headers = { ["Content-Type"] = "application/json" }
end

function request()
  position = (position + 1) % count
  local key = prefix .. "-" .. position
  return wrk.format("POST", start_path, headers, '{"businessKey":"' .. key .. '"}')
end
