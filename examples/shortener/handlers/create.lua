-- POST /links {"url": "https://example.com/some/long/path", "code": "optional-custom-code"}
local validate = require("picloud.validate")

return function(req, ctx)
  local input = validate.assert(req.json, {
    url  = { type = "string", required = true, max = 2048, pattern = "^https?://[%w%.%-]+" },
    code = { type = "string", min = 3, max = 32, pattern = "^[%w%-_]+$" },
  })
  local code = input.code or crypto.random_hex(4)
  if kv.get("link:" .. code) then
    return { status = 409, json = { error = { code = "conflict", message = "the code '" .. code .. "' is taken" } } }
  end
  kv.set("link:" .. code, { url = input.url, created_at = time.iso() })
  return { status = 201, json = { code = code, url = input.url, short = "/apps/" .. ctx.app .. "/api/go/" .. code } }
end
