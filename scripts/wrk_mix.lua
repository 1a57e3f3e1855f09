-- wrk script: each connection walks the query mix (one path a line in the
-- file named by WRK_PATHS), starting at a different place. wrk counts every
-- non-2xx answer in errors.status, reported at the end.
local paths = {}
for line in io.lines(os.getenv("WRK_PATHS")) do
  paths[#paths + 1] = line
end

local counter = 0
function setup(thread)
  thread:set("offset", counter * 7)
  counter = counter + 1
end

local i = 0
function request()
  i = i + 1
  return wrk.format("GET", paths[((i + offset) % #paths) + 1])
end

function done(summary, latency, requests)
  io.write(string.format("requests: %d, non-2xx or socket errors: %d\n",
    summary.requests, summary.errors.status + summary.errors.connect
      + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
