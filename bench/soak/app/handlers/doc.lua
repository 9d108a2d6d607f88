-- Inserts, then queries the newest; the collection is kept to a few thousand documents.
return function()
  local id = docs.insert("items", { n = math.random(1, 1000), at = os.time() })
  local newest = docs.find("items", {}, { limit = 5, sort = "-n" })
  if math.random(1, 10) == 1 then
    for _, item in ipairs(docs.find("items", {}, { limit = 20 })) do docs.delete("items", item.id) end
  end
  return { json = { id = id, newest = #newest } }
end
