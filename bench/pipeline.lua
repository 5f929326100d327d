-- wrk script: pipelining, 16 requests per write (scripts/bench, scenario
-- return_200_pipelined). wrk counts each response, so req/s is per request;
-- latency is measured per batch of 16.
local depth = 16

init = function(args)
    local r = {}
    for i = 1, depth do
        r[i] = wrk.format(nil, nil) -- GET wrk.path with wrk.headers
    end
    req = table.concat(r)
end

request = function()
    return req
end
