-- wrk script: POST ClearKey license requests from many users (the file CLAVIS_BENCH_REQUESTS, one line per user:
-- "plain_token rules_token device session"). With CLAVIS_BENCH_RULES=1 each request uses the user's token whose
-- policy limits devices and streams and sends the device and session headers, so it passes the device-limit and
-- stream-slot rules (every request after a user's first renews its stream); without, the user's plain token, which
-- no rule applies to.
local lines = {}
for line in io.lines(os.getenv("CLAVIS_BENCH_REQUESTS")) do
  local plain, ruled, device, session = line:match("(%S+) (%S+) (%S+) (%S+)")
  table.insert(lines, {plain, ruled, device, session})
end
local body = os.getenv("CLAVIS_BENCH_BODY")
local rules = os.getenv("CLAVIS_BENCH_RULES") == "1"
local i = 0
request = function()
  i = i + 1
  local line = lines[(i % #lines) + 1]
  local headers = {["X-Clavis-Token"] = line[1], ["Content-Type"] = "application/json"}
  if rules then
    headers["X-Clavis-Token"] = line[2]
    headers["X-Clavis-Device"] = line[3]
    headers["X-Clavis-Session"] = line[4]
  end
  return wrk.format("POST", nil, headers, body)
end
