-- kv write: one durable kv.set of a value no earlier write stored (Redis: EVALSHA of
-- SET KEYS[1] ARGV[1] with a random ARGV[1]). A write of the bytes the row already holds changes no
-- page, and SQLite then commits without writing or flushing anything: writing "x" every time
-- measured mostly such commits (see docs/performance.md).
local prefix = string.sub(uuid(), 1, 8) .. "-" -- this VM's own, so two VMs never write the same value
local n = 0
return function()
  n = n + 1
  kv.set("w", prefix .. n)
  return { json = { ok = true } }
end
