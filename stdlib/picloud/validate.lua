-- picloud.validate: check request bodies against a small schema.
--
--   local validate = require("picloud.validate")
--   local ok, errors = validate.check(req.json, {
--     title    = { type = "string", required = true, min = 1, max = 200 },
--     done     = { type = "boolean" },
--     priority = { type = "integer", min = 1, max = 5 },
--     tags     = { type = "array", items = { type = "string" }, max = 10 },
--     kind     = { type = "string", enum = { "note", "task" } },
--     email    = { type = "string", pattern = "^[^@]+@[^@]+$" },
--   })
--   if not ok then return validate.bad_request(errors) end
--
-- `validate.assert(value, schema)` raises instead: the handler answers 400 with the errors.

local M = {}

local function kind(value)
  local t = type(value)
  if t == "number" then return math.type(value) == "integer" and "integer" or "number" end
  if t == "table" then
    if value == json.null then return "null" end
    if next(value) == nil then return getmetatable(value) and "array" or "object" end
    local n = 0
    for _ in pairs(value) do n = n + 1 end
    return (#value == n) and "array" or "object"
  end
  if value == json.null then return "null" end
  return t
end

local function matches_type(value, wanted)
  local actual = kind(value)
  if wanted == "number" then return actual == "number" or actual == "integer" end
  return actual == wanted
end

local function size(value)
  if type(value) == "string" then return utf8.len(value) or #value end
  if type(value) == "table" then
    local n = 0
    for _ in pairs(value) do n = n + 1 end
    return n
  end
  return value
end

local function check_value(value, rule, path, errors)
  if value == nil or value == json.null then
    if rule.required then errors[#errors + 1] = { field = path, message = "is required" } end
    return
  end
  if rule.type and not matches_type(value, rule.type) then
    errors[#errors + 1] = { field = path, message = "must be " .. (rule.type == "integer" and "an integer" or ("a" .. (rule.type:match("^[aeiou]") and "n " or " ") .. rule.type)) }
    return
  end
  local measured = size(value)
  if rule.min and type(measured) == "number" and measured < rule.min then
    errors[#errors + 1] = { field = path, message = (type(value) == "number") and ("must be at least " .. rule.min) or ("must have at least " .. rule.min .. (type(value) == "string" and " characters" or " items")) }
  end
  if rule.max and type(measured) == "number" and measured > rule.max then
    errors[#errors + 1] = { field = path, message = (type(value) == "number") and ("must be at most " .. rule.max) or ("must have at most " .. rule.max .. (type(value) == "string" and " characters" or " items")) }
  end
  if rule.enum then
    local found = false
    for _, allowed in ipairs(rule.enum) do
      if allowed == value then found = true break end
    end
    if not found then errors[#errors + 1] = { field = path, message = "must be one of " .. table.concat(rule.enum, ", ") } end
  end
  if rule.pattern and type(value) == "string" and not value:find(rule.pattern) then
    errors[#errors + 1] = { field = path, message = "has the wrong format" }
  end
  if rule.items and type(value) == "table" then
    for index, item in ipairs(value) do check_value(item, rule.items, path .. "[" .. index .. "]", errors) end
  end
  if rule.fields and type(value) == "table" then
    M.check_fields(value, rule.fields, path .. ".", errors)
  end
  if rule.check then
    local message = rule.check(value)
    if message then errors[#errors + 1] = { field = path, message = message } end
  end
end

function M.check_fields(object, schema, prefix, errors)
  local names = {}
  for name in pairs(schema) do names[#names + 1] = name end
  table.sort(names)
  for _, name in ipairs(names) do check_value(object[name], schema[name], prefix .. name, errors) end
  return errors
end

--- Checks `value` (a table) against `schema` (field = rule); returns true, or false and a list of
--- { field = ..., message = ... }.
function M.check(value, schema)
  if type(value) ~= "table" or value == json.null then
    return false, { { field = "", message = "a JSON object is expected" } }
  end
  local errors = M.check_fields(value, schema, "", {})
  if #errors == 0 then return true end
  return false, errors
end

--- A 400 response listing the errors, in PiCloud's error shape.
function M.bad_request(errors)
  local first = errors[1]
  local message = first and ((first.field ~= "" and (first.field .. " ") or "") .. first.message) or "invalid input"
  return { status = 400, json = { error = { code = "invalid_input", message = message, fields = errors } } }
end

--- Like check, but raises an error the handler answers with 400.
function M.assert(value, schema)
  local ok, errors = M.check(value, schema)
  if not ok then
    local response = M.bad_request(errors)
    error({ status = 400, code = "invalid_input", message = response.json.error.message, fields = errors }, 2)
  end
  return value
end

return M
