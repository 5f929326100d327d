-- bench/per_request's TLS client: after exactly PER_REQUEST_N responses
-- (one thread) wrk stops its connections and says so in the file
-- PER_REQUEST_DONE; per_request then interrupts wrk's timed sleep (SIGINT),
-- so a tool's total divides by a known count
local limit = tonumber(os.getenv("PER_REQUEST_N"))
local n = 0
function response(status, headers, body)
   n = n + 1
   if n == limit then
      wrk.thread:stop()
      local f = io.open(os.getenv("PER_REQUEST_DONE"), "w")
      f:write(n, "\n")
      f:close()
   end
end
