-- What a message is.
local validate = require("picloud.validate")

local M = {}

M.schema = {
  author = { type = "string", required = true, min = 1, max = 40 },
  text   = { type = "string", required = true, min = 1, max = 2000 },
}

M.validate = validate
return M
