-- A durable write whose trigger runs (count.lua).
return function() kv.set("w:" .. math.random(1, 100), math.random(1, 1000000)) return { json = { ok = true } } end
