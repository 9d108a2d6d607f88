-- wrk script: each connection's first request is another one, then GETs of the URL follow.
-- Arguments (after --): connections per wrk thread, and which first request:
--   preflight  a CORS preflight, as a browser's first cross-origin call with a JSON body or an
--              Authorization header
--   client     GET /client/picloud.js, as a page loading the browser client before calling the API
local left, first
local get = wrk.format("GET")

function init(args)
  left = tonumber(args[1]) or 1
  if args[2] == "client" then
    first = wrk.format("GET", "/client/picloud.js")
  else
    first = wrk.format("OPTIONS", nil, {
      ["Origin"] = "https://site.example",
      ["Access-Control-Request-Method"] = "POST",
      ["Access-Control-Request-Headers"] = "authorization, content-type",
    })
  end
end

function request()
  if left > 0 then
    left = left - 1
    return first
  end
  return get
end
