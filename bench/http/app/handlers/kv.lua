-- one read of a hot key and one durable write
return function()
  local n = kv.get("hot") or 0
  kv.set("counter", n + 1)
  return { json = { n = n } }
end
