-- Argo CD health check for stampede.dev/LoadTest.
--
-- Progressing while the operator has not picked up the current spec or the run is on its way
-- (Pending, Provisioning, Running, Aborting); Healthy when the run of the current spec passed
-- (Succeeded); Degraded when it failed, errored, was aborted or the spec is invalid, with the
-- operator's message (it names the failed thresholds or the fault).
--
-- Argo CD runs this as a chunk with the resource in the global `obj` and reads the returned
-- table. Custom checks from argocd-cm run without Lua's string and math libraries (unless
-- `resource.customizations.useOpenLibs.stampede.dev_LoadTest` is set), so this script uses
-- only the base functions and operators. It is installed by argocd-cm-patch.yaml, which
-- inlines a copy of this file: edit both (a test checks they are equal).

local DIGITS = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}

-- A non-negative whole number as text (numbers are floats in Argo CD's Lua).
local function whole(n)
  if n < 1 then
    return "0"
  end
  local text = ""
  while n >= 1 do
    local digit = n % 10
    text = DIGITS[digit + 1] .. text
    n = (n - digit) / 10
  end
  return text
end

-- A number rounded to at most `decimals` places, trailing zeros dropped: 350 -> "350",
-- 12.34 -> "12.3" (decimals 1), 0.0012 -> "0" (decimals 2).
local function num(x, decimals)
  if type(x) ~= "number" then
    return "?"
  end
  if x ~= x or x > 1e15 or x < -1e15 then
    return tostring(x)
  end
  local sign = ""
  if x < 0 then
    sign = "-"
    x = -x
  end
  local scale = 1
  for _ = 1, decimals or 0 do
    scale = scale * 10
  end
  local scaled = x * scale + 0.5
  scaled = scaled - scaled % 1
  local fraction = scaled % scale
  local text = whole((scaled - fraction) / scale)
  if fraction > 0 then
    local places = decimals or 0
    while fraction % 10 == 0 do
      fraction = fraction / 10
      places = places - 1
    end
    local digits = whole(fraction)
    while #digits < places do
      digits = "0" .. digits
    end
    text = text .. "." .. digits
  end
  if text == "0" then
    return text
  end
  return sign .. text
end

local function nonempty(value)
  return type(value) == "string" and value ~= ""
end

local function condition(status, kind)
  if type(status.conditions) ~= "table" then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if type(c) == "table" and c.type == kind then
      return c
    end
  end
  return nil
end

-- "12s/60s, 40 VUs, 350 req/s, p95=12ms, failed=0.10%" from status.progress.
local function progress_text(progress)
  if type(progress) ~= "table" then
    return nil
  end
  local parts = {}
  if type(progress.elapsedSeconds) == "number" then
    local elapsed = num(progress.elapsedSeconds, 0) .. "s"
    if type(progress.totalSeconds) == "number" and progress.totalSeconds > 0 then
      elapsed = elapsed .. "/" .. num(progress.totalSeconds, 0) .. "s"
    end
    parts[#parts + 1] = elapsed
  end
  if type(progress.vus) == "number" then
    parts[#parts + 1] = num(progress.vus, 0) .. " VUs"
  end
  if type(progress.rps) == "number" then
    parts[#parts + 1] = num(progress.rps, 1) .. " req/s"
  end
  if nonempty(progress.p95) then
    parts[#parts + 1] = "p95=" .. progress.p95
  elseif type(progress.p95Ms) == "number" then
    parts[#parts + 1] = "p95=" .. num(progress.p95Ms, 1) .. "ms"
  end
  if nonempty(progress.failed) then
    parts[#parts + 1] = "failed=" .. progress.failed
  end
  if #parts == 0 then
    return nil
  end
  return table.concat(parts, ", ")
end

-- The failed thresholds, "http_req_duration p(95)<500 (observed 512.3)", from status.thresholds.
local function failed_thresholds(status)
  if type(status.thresholds) ~= "table" then
    return nil
  end
  local failed = {}
  for _, t in ipairs(status.thresholds) do
    if type(t) == "table" and t.ok == false then
      local observed = "no samples"
      if type(t.value) == "number" then
        observed = "observed " .. num(t.value, 3)
      end
      failed[#failed + 1] = tostring(t.metric) .. " " .. tostring(t.threshold) .. " (" .. observed .. ")"
    end
  end
  if #failed == 0 then
    return nil
  end
  return table.concat(failed, "; ")
end

-- "passed: 4 thresholds held; 51234 requests, 731.9 req/s, p95=512.3ms, 0.12% failed".
local function passed_text(status)
  local parts = {}
  local count = 0
  if type(status.thresholds) == "table" then
    count = #status.thresholds
  end
  if count == 1 then
    parts[1] = "1 threshold held"
  elseif count > 1 then
    parts[1] = num(count, 0) .. " thresholds held"
  else
    parts[1] = "no thresholds"
  end
  local summary = status.summary
  if type(summary) == "table" then
    local figures = {}
    if type(summary.httpReqs) == "number" then
      figures[#figures + 1] = num(summary.httpReqs, 0) .. " requests"
    end
    if type(summary.rps) == "number" then
      figures[#figures + 1] = num(summary.rps, 1) .. " req/s"
    end
    if type(summary.durationMs) == "table" and type(summary.durationMs.p95) == "number" then
      figures[#figures + 1] = "p95=" .. num(summary.durationMs.p95, 1) .. "ms"
    end
    if type(summary.failedRate) == "number" then
      figures[#figures + 1] = num(summary.failedRate * 100, 2) .. "% failed"
    end
    if #figures > 0 then
      parts[#parts + 1] = table.concat(figures, ", ")
    end
  end
  return "passed: " .. table.concat(parts, "; ")
end

-- Degraded, with the operator's message or, without one, what the status shows.
local function degraded(phase, status)
  local why = status.message
  if not nonempty(why) then
    local passed = condition(status, "Passed")
    if passed ~= nil and nonempty(passed.message) then
      why = passed.message
    else
      why = failed_thresholds(status)
    end
  end
  if nonempty(why) then
    return {status = "Degraded", message = phase .. ": " .. why}
  end
  return {status = "Degraded", message = phase}
end

local function progressing(phase, status)
  local text = phase
  local progress = progress_text(status.progress)
  if progress ~= nil and (phase == "Running" or phase == "Aborting") then
    text = text .. " " .. progress
  elseif type(status.runners) == "table" and type(status.runners.desired) == "number" then
    local ready = status.runners.ready
    if type(ready) ~= "number" then
      ready = 0
    end
    text = text .. ", " .. num(ready, 0) .. "/" .. num(status.runners.desired, 0) .. " runners ready"
  end
  if nonempty(status.message) and (progress == nil or phase ~= "Running") then
    text = text .. ": " .. status.message
  end
  return {status = "Progressing", message = text}
end

local function health(lt)
  local status = lt.status
  if type(status) ~= "table" then
    return {status = "Progressing", message = "waiting for the Stampede operator to pick up the LoadTest"}
  end
  -- A status that describes an older spec says nothing about the current one (as for
  -- `stampede wait`): after a spec change the new run has not been picked up yet.
  local generation = nil
  if type(lt.metadata) == "table" then
    generation = lt.metadata.generation
  end
  if type(generation) == "number" then
    local observed = status.observedGeneration
    if type(observed) ~= "number" or observed < generation then
      return {
        status = "Progressing",
        message = "waiting for the operator to pick up generation " .. num(generation, 0),
      }
    end
  end

  local phase = status.phase
  if not nonempty(phase) then
    -- No phase: read the conditions.
    local complete = condition(status, "Complete")
    if complete ~= nil and complete.status == "True" then
      local passed = condition(status, "Passed")
      if passed ~= nil and passed.status == "True" then
        return {status = "Healthy", message = passed_text(status)}
      end
      return degraded("Finished", status)
    end
    return progressing("Pending", status)
  end

  if phase == "Succeeded" then
    return {status = "Healthy", message = passed_text(status)}
  elseif phase == "Failed" or phase == "Errored" or phase == "Invalid" or phase == "Aborted" then
    return degraded(phase, status)
  elseif phase == "Pending" or phase == "Provisioning" or phase == "Running" or phase == "Aborting" then
    return progressing(phase, status)
  end
  return {status = "Progressing", message = "unknown phase " .. tostring(phase)}
end

hs = health(obj)
return hs
