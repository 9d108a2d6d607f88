-- n events for the trigger, each its own committed transaction
return function(req)
  for i = 1, tonumber(req.params.n) do pubsub.publish("bench", { i = i }) end
  return "ok"
end
