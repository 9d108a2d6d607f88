return function() return { json = { hello = "world" } } end
