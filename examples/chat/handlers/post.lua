-- POST /messages {"author": "Ada", "text": "Hello"}: stores the message and sends it to the room.
local chat = require("lib.chat")

return function(req, ctx)
  local input = chat.validate.assert(req.json, chat.schema)
  local message = { author = input.author, text = input.text, sent_at = time.now() }
  message.id = docs.insert("messages", message)
  pubsub.publish("room", message)   -- every open page gets it over Server-Sent Events
  return { status = 201, json = message }
end
