-- One event per request: the JSON body (the send time, {"t": µs}) becomes the message.
return function(req) return { json = { id = pubsub.publish("bench", req.json) } } end
