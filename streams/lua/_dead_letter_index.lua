-- Fragment: included (`-- #include _dead_letter_index`) by the scripts that write or
-- remove dead letters (dead_letter_11.lua, replay_dead_letters_8.lua,
-- trim_dead_letters_2.lua). The index is streams/dead_letter_index.py's (see there):
-- a sorted set, scores 0, members `<group> NUL <name> NUL <ms, 15 digits>-<seq, 10 digits>`
-- with group `t` (a tenant's dead letters) or `k` (an error kind's).
--
-- dead_letter_member(group, name, dlq_id)   the member of one dead letter in one group
-- trim_dead_letter_index(index, ms)         removes every group's members with ids before
--                                           `ms`-0; returns how many it removed

local function dead_letter_member(group, name, dlq_id)
  local ms, seq = string.match(dlq_id, '^(%d+)-(%d+)$')
  return group .. '\0' .. name .. '\0' .. string.rep('0', 15 - #ms) .. ms .. '-' ..
    string.rep('0', 10 - #seq) .. seq
end

-- Walks the groups' names in order: one ZRANGE to find the next name, one
-- ZREMRANGEBYLEX for its old members (names, not members: cheap however many there are).
local function trim_dead_letter_index(index, ms)
  local removed, start = 0, '(\0\255'  -- past COMPLETE (NUL + text): groups start with a letter
  local padded = string.rep('0', 15 - #ms) .. ms .. '-'
  while true do
    local first = redis.call('ZRANGE', index, start, '+', 'BYLEX', 'LIMIT', 0, 1)
    if #first == 0 then
      return removed
    end
    local prefix = string.match(first[1], '^(.*%z)')
    removed = removed + redis.call('ZREMRANGEBYLEX', index, '[' .. prefix,
      '(' .. prefix .. padded)
    start = '(' .. prefix .. '\255'
  end
end
