-- GET /go/:code → 302 to the stored URL, counting the click
return function(req)
  local link = kv.get("link:" .. req.params.code)
  if not link then
    return { status = 404, json = { error = { code = "not_found", message = "no link " .. req.params.code } } }
  end
  kv.incr("clicks:" .. req.params.code)
  return { status = 302, headers = { location = link.url } }
end
