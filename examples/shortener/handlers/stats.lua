-- GET /links/:code → the link and how often it was followed
return function(req)
  local link = kv.get("link:" .. req.params.code)
  if not link then
    return { status = 404, json = { error = { code = "not_found", message = "no link " .. req.params.code } } }
  end
  return { json = { code = req.params.code, url = link.url, created_at = link.created_at, clicks = kv.get("clicks:" .. req.params.code) or 0 } }
end
