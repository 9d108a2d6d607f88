-- A hot key and a key that changes all the time.
return function() return { json = { hot = kv.get("hot"), n = kv.get("w:" .. math.random(1, 100)) } } end
