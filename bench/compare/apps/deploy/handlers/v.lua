return function() return { json = { v = 0 } } end
