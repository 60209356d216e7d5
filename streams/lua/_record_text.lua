-- Fragment: included (`-- #include _record_text`) by the scripts that edit an outcome
-- record's fields as text (apply_receipt_2.lua, acknowledge_7.lua). Records are flat JSON
-- objects whose first field is `state`; they are edited field by field, never decoded and
-- re-encoded (cjson would print numbers of 15 digits and more rounded, and reorder and
-- re-escape the rest).
--
-- value_end(json, i)            index of the last character of the value starting at i
-- without(record, name)         the record without its field `name`
-- with(record, name, encoded)   the record with `name` appended (an encoded JSON value)
-- field_text(record, name)      the encoded value of `name`, or nil
-- carry_receipt(record, old)    `record` with the receipt fields of `old` (the record it
--                               replaces), so a receipt that came first is not lost

local function value_end(json, i)
  if string.sub(json, i, i) ~= '"' then
    return string.find(json, '[,}]', i) - 1
  end
  local k = i + 1
  while true do
    local c = string.sub(json, k, k)
    if c == '\\' then
      k = k + 2
    elseif c == '"' then
      return k
    else
      k = k + 1
    end
  end
end

-- `,"` cannot occur inside a JSON string (a quote there is escaped), so the match is a key.
local function without(record, name)
  local s, e = string.find(record, ',"' .. name .. '":', 1, true)
  if not s then
    return record
  end
  return string.sub(record, 1, s - 1) .. string.sub(record, value_end(record, e + 1) + 1)
end

local function with(record, name, encoded)
  return string.sub(record, 1, -2) .. ',"' .. name .. '":' .. encoded .. '}'
end

local function field_text(record, name)
  local _, e = string.find(record, ',"' .. name .. '":', 1, true)
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
