-- bench/compare: the group-commit ceiling of this disk. Tarantool, in process, wal_mode = 'fsync':
-- FIBERS fibers each loop on box.space.bench:replace{id, 'x'} for SECONDS; a replace returns once
-- its WAL write is fsynced, and concurrent fibers' writes share one write and one fsync.
--   tarantool tarantool-replace.lua DIR FIBERS SECONDS  →  "replaces seconds p50_ms p99_ms"
local dir, fibers, seconds = arg[1], tonumber(arg[2]), tonumber(arg[3])
local fiber = require('fiber')
local clock = require('clock')
box.cfg{ wal_mode = 'fsync', memtx_dir = dir, wal_dir = dir, log = dir .. '/tarantool.log', checkpoint_interval = 0 }
local space = box.schema.space.create('bench', { if_not_exists = true })
space:create_index('pk', { type = 'hash', parts = { 1, 'unsigned' }, if_not_exists = true })
local done, stop, latencies = 0, false, {}
local function writer(id)
  while not stop do
    local t0 = clock.monotonic()
    space:replace{ id, 'x' }
    latencies[#latencies + 1] = clock.monotonic() - t0
    done = done + 1
  end
end
local start = clock.monotonic()
for i = 1, fibers do fiber.create(writer, i) end
fiber.sleep(seconds)
stop = true
local elapsed = clock.monotonic() - start
local counted = done
fiber.sleep(0.2)
table.sort(latencies)
local function quantile(q) return latencies[math.max(1, math.ceil(q * #latencies))] * 1000 end
print(string.format('%d %.3f %.3f %.3f', counted, elapsed, quantile(0.5), quantile(0.99)))
os.exit(0)
