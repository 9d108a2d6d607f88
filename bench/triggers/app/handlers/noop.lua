return function(event) end
