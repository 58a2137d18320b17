-- wrk script: one OFREP single-flag evaluation per request, with a varying targeting key.
local counter = 0
request = function()
  counter = counter + 1
  local body = string.format('{"context":{"targetingKey":"user-%d","country":"de"}}', counter % 10000)
  return wrk.format("POST", wrk.path, { ["Authorization"] = "Bearer " .. os.getenv("SDK_KEY"), ["Content-Type"] = "application/json" }, body)
end
