-- Fragment: included (`-- #include _record_text`) by the scripts that edit an outcome
-- record's fields as text (apply_receipt_2.lua, acknowledge_8.lua, dead_letter_11.lua,
-- record_attempt_4.lua). Records are JSON objects whose first field is `state`; they are
-- edited field by field, never decoded and re-encoded (cjson would print numbers of 15
-- digits and more rounded, and reorder and re-escape the rest).
--
-- One field is not flat: `history`, an array of attempt notes (objects whose keys repeat
-- some of the record's own: error, kind, at_ms, worker). Lookups skip its text; it is
-- carried whole, as one value.
--
-- value_end(json, i)            index of the last character of the value starting at i
-- without(record, name)         the record without its field `name`
-- with(record, name, encoded)   the record with `name` appended (an encoded JSON value)
-- field_text(record, name)      the encoded value of `name`, or nil
-- carry_receipt(record, old)    `record` with the receipt fields of `old` (the record it
--                               replaces), so a receipt that came first is not lost
-- carry_history(record, old)    `record` with the history of `old`, if it has one
-- noted(history, note, keep)    the history text (nil: none yet) with the note (an encoded
--                               JSON object) appended, its last `keep` notes

local function string_end(json, i)
  local k = i + 1
  while true do
    local c = string.find(json, '["\\]', k)
    if string.sub(json, c, c) == '"' then
      return c
    end
    k = c + 2
  end
end

local function value_end(json, i)
  local first = string.sub(json, i, i)
  if first == '"' then
    return string_end(json, i)
  elseif first ~= '[' and first ~= '{' then
    return string.find(json, '[,}%]]', i) - 1
  end
  local depth, k = 0, i
  while true do
    k = string.find(json, '["{}%[%]]', k)
    local c = string.sub(json, k, k)
    if c == '"' then
      k = string_end(json, k)
    elseif c == '{' or c == '[' then
      depth = depth + 1
    else
      depth = depth - 1
      if depth == 0 then
        return k
      end
    end
    k = k + 1
  end
end

-- Where the key `name` of the record itself is (start of `,"name":`, index of its colon),
-- or nil: a match inside the history's notes is skipped.
local function key_at(record, name)
  local key = ',"' .. name .. '":'
  local s, e = string.find(record, key, 1, true)
  if not s or name == 'history' then
    return s, e
  end
  local h, colon = string.find(record, ',"history":', 1, true)
  if h and h < s then
    local last = value_end(record, colon + 1)
    if s < last then
      return string.find(record, key, last + 1, true)
    end
  end
  return s, e
end

-- `,"` cannot occur inside a JSON string (a quote there is escaped), so the match is a key.
local function without(record, name)
  local s, e = key_at(record, name)
  if not s then
    return record
  end
  return string.sub(record, 1, s - 1) .. string.sub(record, value_end(record, e + 1) + 1)
end

local function with(record, name, encoded)
  return string.sub(record, 1, -2) .. ',"' .. name .. '":' .. encoded .. '}'
end

local function field_text(record, name)
  local _, e = key_at(record, name)
  if not e then
    return nil
  end
  return string.sub(record, e + 1, value_end(record, e + 1))
end

local function carry_receipt(record, old)
  if not old or not string.find(old, ',"receipt":', 1, true) then
    return record
  end
  for _, name in ipairs({'receipt', 'receipt_ms', 'error'}) do
    local value = field_text(old, name)
    if value and (name ~= 'error' or field_text(old, 'receipt') == '"failed"') then
      record = with(without(record, name), name, value)
    end
  end
  return record
end

local function carry_history(record, old)
  local history = old and field_text(old, 'history')
  if not history then
    return record
  end
  return with(without(record, 'history'), 'history', history)
end

local function noted(history, note, keep)
  local notes = {}
  if history then
    local i = 2  -- after the '['
    while string.sub(history, i, i) == '{' do
      local last = value_end(history, i)
      notes[#notes + 1] = string.sub(history, i, last)
      i = last + 2  -- past the ',' (or the closing ']': the loop ends)
    end
  end
  notes[#notes + 1] = note
  return '[' .. table.concat(notes, ',', math.max(1, #notes - keep + 1)) .. ']'
end
