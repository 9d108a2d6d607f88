-- GET /messages?limit=50: the newest messages, oldest first (what a page shows when it opens).
return function(req)
  local limit = math.min(tonumber(req.query.limit) or 50, 200)
  local newest = docs.find("messages", {}, { sort = "-sent_at", limit = limit })
  local items = json.array()   -- [] even when there is nothing yet
  for i = #newest, 1, -1 do items[#items + 1] = newest[i] end
  return { json = { items = items } }
end
