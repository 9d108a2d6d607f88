-- kv write: one durable kv.set, answered after its commit (Redis: EVALSHA of SET KEYS[1] ARGV[1])
return function()
  kv.set("w", "x")
  return { json = { ok = true } }
end
