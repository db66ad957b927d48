-- netio: the public shape of the netio module. The work is done by the C
-- module netio.core; this file re-exports it and documents the API.
--
--   netio.run(fn, ...)            run fn as the first task; true, results
--   netio.spawn(fn, ...)          -> task; task:join([timeout])
--   netio.sleep(sec), netio.now(), netio.stop(), netio.backend()
--   netio.available(name)         whether backend `name` works here
--   netio.intask()                whether the caller is a netio task
--   netio.listen(addr[, opts])    -> listener | nil, err, code
--   netio.connect(addr[, opts])   -> conn | nil, err, code
--
-- See DESIGN.md §2 for the contract and README.md for the choices made
-- where it is silent (line limit of "*l", aliases, close semantics).
local core = require "netio.core"

local netio = {}
for k, v in pairs(core) do
  netio[k] = v
end
netio.core = core

return netio
