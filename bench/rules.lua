-- wrk script: POST ClearKey license requests from many users, each with its own token, device and playback session
-- (from the file CLAVIS_BENCH_REQUESTS, one "token device session" per line). With CLAVIS_BENCH_RULES=1 the device
-- and session headers are sent, so every request passes the device-limit and stream-slot rules (each one after a
-- user's first is a renewal of its stream); without, the same tokens' requests skip them.
local lines = {}
for line in io.lines(os.getenv("CLAVIS_BENCH_REQUESTS")) do
  local token, device, session = line:match("(%S+) (%S+) (%S+)")
  table.insert(lines, {token, device, session})
end
local body = os.getenv("CLAVIS_BENCH_BODY")
local rules = os.getenv("CLAVIS_BENCH_RULES") == "1"
local i = 0
request = function()
  i = i + 1
  local line = lines[(i % #lines) + 1]
  local headers = {["X-Clavis-Token"] = line[1], ["Content-Type"] = "application/json"}
  if rules then
    headers["X-Clavis-Device"] = line[2]
    headers["X-Clavis-Session"] = line[3]
  end
  return wrk.format("POST", nil, headers, body)
end
