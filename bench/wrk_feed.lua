-- wrk script for bench/wrk.py: send pre-built raw HTTP requests read from a feed file, each thread its own
-- share, in order, wrapping around when the feed runs out. Records: "<length>\n<request bytes>".
local counter = 0

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
end

function request()
  next_request = next_request % #requests + 1
  return requests[next_request]
end
