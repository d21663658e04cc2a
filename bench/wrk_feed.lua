-- wrk script for bench/wrk.py: send pre-built raw HTTP requests read from a feed file, each thread its own
-- share, in order, wrapping around when the feed runs out; with WRK_ONCE=1, each request once, then the
-- thread stops (a burst). Records: "<length>\n<request bytes>".
local counter = 0
local once = os.getenv("WRK_ONCE") == "1"
local answered = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end

function init(args)
  local threads = tonumber(os.getenv("WRK_THREADS") or "1")
  local file = assert(io.open(os.getenv("WRK_FEED"), "rb"))
  local data = file:read("*a")
  file:close()
  requests = {}
  local pos, n = 1, 0
  while pos <= #data do
    local newline = data:find("\n", pos, true)
    local length = tonumber(data:sub(pos, newline - 1))
    if n % threads == id then
      requests[#requests + 1] = data:sub(newline + 1, newline + length)
    end
    n = n + 1
    pos = newline + 1 + length
  end
  next_request = 0
  probed = id ~= 0
end

function request()
  if not probed then  -- wrk calls request() once on thread 0 to check the script: send nothing for it
    probed = true
    return requests[1]
  end
  if once and next_request >= #requests then
    return wrk.format("GET", "/healthz")  -- a connection still open after the burst: cheap, and not counted
  end
  next_request = next_request % #requests + 1
  return requests[next_request]
end

if once then  -- defined only for a burst: a response() makes wrk hand every answer to Lua
  function response(status, headers, body)
    if body ~= '{"status":"ok"}' then  -- not the /healthz filler
      answered = answered + 1
    end
    if answered >= #requests then
      wrk.thread:stop()
    end
  end
end
