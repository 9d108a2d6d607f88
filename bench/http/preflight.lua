-- wrk script: the first request of each connection is a CORS preflight, as a browser's first
-- cross-origin call with a JSON body or an Authorization header; GETs of the URL follow.
-- Arguments (after --): connections per wrk thread.
local left
local preflight = wrk.format("OPTIONS", nil, {
  ["Origin"] = "https://site.example",
  ["Access-Control-Request-Method"] = "POST",
  ["Access-Control-Request-Headers"] = "authorization, content-type",
})
local get = wrk.format("GET")

function init(args)
  left = tonumber(args[1]) or 1
end

function request()
  if left > 0 then
    left = left - 1
    return preflight
  end
  return get
end
