-- Argo CD health of a FineTuneJob (headstart.dev/FineTuneJob), from the status the operator writes.
-- Install: the argocd-cm entry in argocd-cm-patch.yaml (resource.customizations.health.headstart.dev_FineTuneJob).
local hs = {}
local status = obj.status
if status == nil or status.phase == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the Headstart operator"
  return hs
end
if obj.metadata ~= nil and obj.metadata.generation ~= nil and status.observedGeneration ~= nil
    and status.observedGeneration < obj.metadata.generation then
  hs.status = "Progressing"
  hs.message = "The operator has not seen the latest spec yet"
  return hs
end
local message = status.message or ""
if status.conditions ~= nil then
  for _, condition in ipairs(status.conditions) do
    if condition.type == "Stalled" and condition.status == "True" then
      hs.status = "Degraded"
      hs.message = (condition.reason or "Stalled") .. ": " .. (condition.message or message)
      return hs
    end
  end
end
local phase = status.phase
if phase == "Succeeded" then
  hs.status = "Healthy"
elseif phase == "Failed" then
  hs.status = "Degraded"
elseif phase == "Suspended" then
  hs.status = "Suspended"
else
  hs.status = "Progressing"
end
if status.reason ~= nil and status.reason ~= "" then
  hs.message = status.reason .. ": " .. message
else
  hs.message = message
end
return hs
