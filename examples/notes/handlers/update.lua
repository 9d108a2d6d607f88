-- PATCH /notes/:id {"title": "...", "tag": null}   (null removes a field)
local notes = require("lib.notes")

return function(req)
  notes.find(req.params.id)
  local patch = req.json or {}
  local check = {}
  for field, rule in pairs(notes.schema) do
    check[field] = { type = rule.type, min = rule.min, max = rule.max, pattern = rule.pattern }
  end
  notes.validate.assert(patch, check)
  patch.updated_at = time.now()
  return { json = docs.update("notes", req.params.id, patch) }
end
