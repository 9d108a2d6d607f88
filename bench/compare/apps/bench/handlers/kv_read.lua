-- kv read: one kv.get of a hot key (ngx_lua: ngx.shared.bench:get("hot"))
return function() return { json = { n = kv.get("hot") } } end
