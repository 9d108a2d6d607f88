-- Shared rules for notes.
local validate = require("picloud.validate")

local M = {}

M.schema = {
  title = { type = "string", required = true, min = 1, max = 200 },
  body  = { type = "string", max = 10000 },
  tag   = { type = "string", max = 40, pattern = "^[%w%-_]+$" },
}

--- The note with the id in the path, or a 404 error.
function M.find(id)
  local note = docs.get("notes", id)
  if not note then error({ status = 404, code = "not_found", message = "no note " .. id }) end
  return note
end

M.validate = validate
return M
