-- the baseline: n durable one-row transactions, no trigger
return function(req)
  for i = 1, tonumber(req.params.n) do kv.set("w", i) end
  return "ok"
end
