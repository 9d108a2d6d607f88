-- A handler that computes without waiting: 20 million loop iterations (about 0.1-0.2 s of Lua).
return function()
  local sum = 0
  for i = 1, 20000000 do sum = sum + i % 7 end
  return { json = { sum = sum } }
end
