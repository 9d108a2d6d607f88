-- wrk script: a mixed workload over the soak app's endpoints (reads weigh most).
local paths = {
  { "GET", "/apps/soak/api/read" }, { "GET", "/apps/soak/api/read" }, { "GET", "/apps/soak/api/read" },
  { "POST", "/apps/soak/api/write" }, { "POST", "/apps/soak/api/write" },
  { "POST", "/apps/soak/api/doc" }, { "POST", "/apps/soak/api/file" }, { "POST", "/apps/soak/api/publish" },
}
local i = 0
request = function()
  i = i % #paths + 1
  return wrk.format(paths[i][1], paths[i][2])
end
