-- POST /notes {"title": "...", "body": "...", "tag": "..."}
local notes = require("lib.notes")

return function(req, ctx)
  local input = notes.validate.assert(req.json, notes.schema)
  local note = { title = input.title, body = input.body or "", tag = input.tag, created_at = time.now() }
  note.id = docs.insert("notes", note)
  log.info("note created", { id = note.id, request = ctx.request_id })
  pubsub.publish("notes", { op = "created", note = note })   -- browsers following the "notes" topic see it
  return { status = 201, json = note }
end
