-- fan-out: one event per request; the JSON body ({"t": send time in µs}) becomes the message
return function(req) return { json = { id = pubsub.publish("bench", req.json) } } end
