-- endpoint-bench only: a handler that takes the request table (its query decoded)
return function(req) return { json = { q = req.query.q } } end
