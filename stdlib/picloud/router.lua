-- picloud.router: several routes in one handler.
--
--   -- picloud.toml: [[endpoints]] method = "*", path = "/*rest", handler = "handlers/api.lua"
--   local router = require("picloud.router")
--   local r = router.new()
--   r:get("/notes", function(req, ctx) ... end)
--   r:post("/notes", function(req, ctx) ... end)
--   r:get("/notes/:id", function(req, ctx) return { json = docs.get("notes", req.params.id) } end)
--   return function(req, ctx) return r:dispatch(req, ctx) end
--
-- A path that matches no route answers 404; a path that matches with another method, 405.

local M = {}
M.__index = M

function M.new()
  return setmetatable({ routes = {} }, M)
end

local function split(path)
  local parts = {}
  for part in path:gmatch("[^/]+") do parts[#parts + 1] = part end
  return parts
end

function M:add(method, pattern, handler)
  assert(type(handler) == "function", "router: a route needs a handler function")
  self.routes[#self.routes + 1] = { method = method:upper(), parts = split(pattern), pattern = pattern, handler = handler }
  return self
end

for _, method in ipairs({ "get", "post", "put", "patch", "delete" }) do
  M[method] = function(self, pattern, handler) return self:add(method, pattern, handler) end
end

local function match(route, parts)
  local params = {}
  for index, part in ipairs(route.parts) do
    local name = part:match("^:(.+)$")
    local rest = part:match("^%*(.+)$")
    if rest then
      params[rest] = table.concat(parts, "/", index)
      return params
    elseif name then
      if parts[index] == nil then return nil end
      params[name] = parts[index]
    elseif parts[index] ~= part then
      return nil
    end
  end
  if #parts ~= #route.parts then return nil end
  return params
end

--- Runs the first route that matches req.method and req.path; req.params gets the route's parameters.
function M:dispatch(req, ctx)
  local parts = split(req.path or "/")
  local allowed = {}
  for _, route in ipairs(self.routes) do
    local params = match(route, parts)
    if params then
      if route.method == req.method or route.method == "*" then
        local merged = {}
        for k, v in pairs(req.params or {}) do merged[k] = v end
        for k, v in pairs(params) do merged[k] = v end
        req.params = merged
        return route.handler(req, ctx)
      end
      allowed[#allowed + 1] = route.method
    end
  end
  if #allowed > 0 then
    return { status = 405, headers = { allow = table.concat(allowed, ", ") },
             json = { error = { code = "method_not_allowed", message = req.method .. " is not allowed here" } } }
  end
  return { status = 404, json = { error = { code = "not_found", message = "no route for " .. req.method .. " " .. (req.path or "/") } } }
end

return M
