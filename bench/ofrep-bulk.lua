-- wrk script: one OFREP bulk evaluation (every flag of the environment) per request.
local counter = 0
request = function()
  counter = counter + 1
  local body = string.format('{"context":{"targetingKey":"user-%d","country":"de"}}', counter % 10000)
  return wrk.format("POST", "/ofrep/v1/evaluate/flags", { ["Authorization"] = "Bearer " .. os.getenv("SDK_KEY"), ["Content-Type"] = "application/json" }, body)
end
