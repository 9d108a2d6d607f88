-- GET /notes?tag=work&limit=20&after=<cursor>
return function(req)
  local filter = {}
  if req.query.tag then filter.tag = req.query.tag end
  local limit = tonumber(req.query.limit) or 20
  local items, next = docs.find("notes", filter, { sort = "-created_at", limit = limit, after = req.query.after })
  return { json = { items = items, next = next } }
end
