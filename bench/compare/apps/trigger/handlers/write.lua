-- n kv.set calls, each its own committed transaction with its trigger event (?w= names the writer)
return function(req)
  local prefix = "t:" .. (req.query.w or "0") .. ":"
  for i = 1, tonumber(req.params.n) do kv.set(prefix .. i, i) end
  return { json = { ok = true } }
end
