return function() return { json = { id = pubsub.publish("feed", { at = os.time(), n = math.random(1, 1000) }) } } end
