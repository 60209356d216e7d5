-- Fragment: included (`-- #include _group_info`) by the repair scripts that need the
-- consumer group's state.
--
-- group_info(stream, group)
--   stream  a stream key
--   group   the consumer group's name
--
-- Returns the group's XINFO GROUPS fields as a table (name, consumers, pending,
-- last-delivered-id, ...), or nil when the stream or the group does not exist.
local function group_info(stream, group)
  if redis.call('EXISTS', stream) == 0 then
    return nil
  end
  for _, reply in ipairs(redis.call('XINFO', 'GROUPS', stream)) do
    local fields = {}
    for k = 1, #reply, 2 do
      fields[reply[k]] = reply[k + 1]
    end
    if fields['name'] == group then
      return fields
    end
  end
  return nil
end
