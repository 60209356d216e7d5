-- Fragment: included (`-- #include _dead_letter_index`) by the scripts that write or
-- remove dead letters (dead_letter_11.lua, replay_dead_letters_8.lua,
-- trim_dead_letters_2.lua). The index is streams/dead_letter_index.py's (see there):
-- a sorted set, scores 0, members `<tenant> NUL <ms, 15 digits>-<seq, 10 digits>`.
--
-- dead_letter_member(tenant, dlq_id)   the member of one dead letter
-- trim_dead_letter_index(index, ms)    removes every tenant's members with ids before
--                                      `ms`-0; returns how many it removed

local function dead_letter_member(tenant, dlq_id)
  local ms, seq = string.match(dlq_id, '^(%d+)-(%d+)$')
  return tenant .. '\0' .. string.rep('0', 15 - #ms) .. ms .. '-' ..
    string.rep('0', 10 - #seq) .. seq
end

local function trim_dead_letter_index(index, ms)
  local removed, start = 0, '-'
  local padded = string.rep('0', 15 - #ms) .. ms .. '-'
  while true do
    local first = redis.call('ZRANGE', index, start, '+', 'BYLEX', 'LIMIT', 0, 1)
    if #first == 0 then
      return removed
    end
    local tenant = string.match(first[1], '^([^%z]*)%z')
    if tenant and tenant ~= '' then
      removed = removed + redis.call('ZREMRANGEBYLEX', index, '[' .. tenant .. '\0',
        '(' .. tenant .. '\0' .. padded)
    end
    start = '(' .. (tenant or first[1]) .. '\0\255'
  end
end
