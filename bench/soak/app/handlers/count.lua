return function(event) kv.incr("triggered") end
