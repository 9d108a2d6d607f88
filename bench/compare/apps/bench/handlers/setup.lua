-- called once before the kv read workload: the hot key
return function()
  kv.set("hot", 42)
  return { json = { ok = true } }
end
