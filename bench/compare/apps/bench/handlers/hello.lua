-- hello: a small JSON object (ngx_lua: cjson.encode({hello = "world"}))
return function() return { json = { hello = "world" } } end
