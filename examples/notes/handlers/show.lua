-- GET /notes/:id
local notes = require("lib.notes")

return function(req)
  return { json = notes.find(req.params.id) }
end
