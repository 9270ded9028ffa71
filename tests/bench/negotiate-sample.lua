-- wrk script for the negotiate benchmark: keeps every 997th answer (status and body) so that the
-- benchmark can check, afterwards, that the tokens handed out under load are valid.
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  n = 0
  kept = ""
end

function response(status, headers, body)
  n = n + 1
  if n % 997 == 1 then
    kept = kept .. status .. " " .. body .. "\n"
  end
end

function done(summary, latency, requests)
  local f = io.open(os.getenv("NEGOTIATE_SAMPLES"), "w")
  for _, t in ipairs(threads) do
    f:write(t:get("kept"))
  end
  f:close()
  io.write(string.format("latency p50 %.0f us, p99 %.0f us, max %.0f us\n",
    latency:percentile(50), latency:percentile(99), latency.max))
end
