-- Files overwritten in a ring of 50 names (old contents become garbage the sweep collects).
return function()
  local name = "ring/" .. math.random(1, 50)
  files.put(name, string.rep(string.char(math.random(65, 90)), 4096 + math.random(0, 4096)))
  return { json = { name = name, size = #files.get(name) } }
end
