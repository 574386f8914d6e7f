--- `:StagecoderReview`: runs `stagecoder review --format json` and fills the quickfix list.
---
--- The JSON shapes read here are the same as editors/vscode/src/findings.ts:
--- - the root is a list of findings, or an object with `findings` (or `results`), or an object
---   with `files = [{ path, findings }]`;
--- - a finding names its file with `path` (or `file`, `filename`, `uri`), its rule with `rule`
---   (or `ruleId`, `code`, `id`), has a `message` and an optional `severity`/`level`;
--- - its place is an LSP `range` (0-based `line`/`character`), or `start`/`end`, or
---   `location`/`endLocation`, or flat `line`/`column`/`endLine`/`endColumn`; those use
---   `line`/`row` and `column`/`col`, 1-based as printed for people.

local M = {}

local TITLE = 'stagecoder review'

local function is_obj(v)
  return type(v) == 'table' and not vim.islist(v)
end

local function first(obj, keys, kind)
  for _, key in ipairs(keys) do
    local v = obj[key]
    if type(v) == kind and v ~= '' then
      return v
    end
    if kind == 'string' and type(v) == 'number' then
      return tostring(v)
    end
  end
end

--- A point as 1-based { lnum, col } for the quickfix list; `base` is how the input counts.
local function point(obj, base)
  if not is_obj(obj) then
    return nil
  end
  if type(obj.line) == 'number' and type(obj.character) == 'number' then
    return { obj.line + 1, obj.character + 1 } -- an LSP Position is 0-based
  end
  local line = first(obj, { 'line', 'row' }, 'number')
  if not line then
    return nil
  end
  local col = first(obj, { 'column', 'col' }, 'number') or base
  return { line - base + 1, col - base + 1 }
end

local function span(f)
  local candidates = {}
  if is_obj(f.range) then
    candidates[#candidates + 1] = { f.range.start, f.range['end'], 0 }
  end
  candidates[#candidates + 1] = { f.start, f['end'], 1 }
  candidates[#candidates + 1] = { f.location, f.endLocation or f.end_location, 1 }
  if is_obj(f.location) and is_obj(f.location.range) then
    candidates[#candidates + 1] = { f.location.range.start, f.location.range['end'], 0 }
  end
  for _, c in ipairs(candidates) do
    local s = point(c[1], c[3])
    if s then
      local e = point(c[2], c[3]) or s
      return s[1], s[2], e[1], e[2]
    end
  end
  local s = point(f, 1) or { 1, 1 }
  local end_line = first(f, { 'endLine', 'end_line', 'endRow', 'end_row' }, 'number')
  local end_col = first(f, { 'endColumn', 'end_column', 'endCol', 'end_col' }, 'number')
  return s[1], s[2], end_line or s[1], end_col or s[2]
end

local TYPES = { error = 'E', fatal = 'E', warning = 'W', info = 'I', information = 'I', note = 'I', hint = 'N' }

local function item(raw, inherited_path, cwd)
  if not is_obj(raw) then
    return nil
  end
  local path = first(raw, { 'path', 'file', 'filename', 'uri' }, 'string') or inherited_path
  if not path and is_obj(raw.location) then
    path = first(raw.location, { 'path', 'file', 'uri' }, 'string')
  end
  if not path then
    return nil
  end
  if path:match('^file://') then
    path = vim.uri_to_fname(path)
  elseif cwd and not vim.startswith(path, '/') and not path:match('^%a:[/\\]') then
    path = vim.fs.joinpath(cwd, path)
  end
  local message = raw.message
  if is_obj(message) then
    message = message.text
  end
  local rule = first(raw, { 'rule', 'ruleId', 'code', 'id' }, 'string')
  local severity = raw.severity or raw.level
  local lnum, col, end_lnum, end_col = span(raw)
  return {
    filename = path,
    lnum = lnum,
    col = col,
    end_lnum = end_lnum,
    end_col = end_col,
    type = TYPES[type(severity) == 'string' and severity:lower() or ''] or 'W',
    text = rule and ('[%s] %s'):format(rule, message or '') or (message or ''),
    user_data = { rule = rule },
  }
end

--- Quickfix items from the text of a JSON review report; errors when it is not JSON.
---@param text string
---@param cwd? string directory that relative paths in the report are relative to
---@return vim.quickfix.entry[]
function M.parse(text, cwd)
  local root = vim.json.decode(text, { luanil = { object = true, array = true } })
  local items = {}
  local function take(list, path)
    if type(list) ~= 'table' then
      return
    end
    for _, raw in ipairs(list) do
      local it = item(raw, path, cwd)
      if it then
        items[#items + 1] = it
      end
    end
  end
  if vim.islist(root) then
    take(root)
  elseif is_obj(root) then
    take(root.findings or root.results)
    if type(root.files) == 'table' then
      for _, file in ipairs(root.files) do
        if is_obj(file) then
          take(file.findings or file.results, first(file, { 'path', 'file', 'uri' }, 'string'))
        end
      end
    end
  end
  return items
end

--- The directory to review: the attached server's root, else the current directory.
local function default_root()
  local client = require('stagecoder').clients(0)[1]
  return (client and client.root_dir) or vim.fn.getcwd()
end

---@class stagecoder.review.Opts
---@field paths? string[] Files or directories (default: the project root).
---@field on_done? fun(items: vim.quickfix.entry[]?, err: string?) Called when the list is set.

--- Runs a review in the background and fills the quickfix list titled "stagecoder review".
---@param opts? stagecoder.review.Opts
function M.run(opts)
  opts = opts or {}
  local config = require('stagecoder').config
  local cwd = default_root()
  local paths = (opts.paths and #opts.paths > 0) and opts.paths or { cwd }
  local cmd = vim.list_extend(vim.deepcopy(config.command), { 'review', '--format', 'json' })
  vim.list_extend(cmd, paths)
  vim.notify('stagecoder: reviewing ' .. table.concat(paths, ' ') .. ' …', vim.log.levels.INFO)

  local function finish(items, err)
    if err then
      vim.notify('stagecoder: review failed: ' .. err, vim.log.levels.ERROR)
    else
      vim.fn.setqflist({}, ' ', { title = TITLE, items = items })
      local files = {}
      for _, it in ipairs(items) do
        files[it.filename] = true
      end
      local nfiles = vim.tbl_count(files)
      vim.notify(
        ('stagecoder: %d finding%s in %d file%s'):format(
          #items,
          #items == 1 and '' or 's',
          nfiles,
          nfiles == 1 and '' or 's'
        ),
        vim.log.levels.INFO
      )
      if #items > 0 and config.review.open then
        vim.cmd('botright copen')
      end
    end
    if opts.on_done then
      opts.on_done(items, err)
    end
  end

  local ok, spawn_err = pcall(vim.system, cmd, { text = true, cwd = cwd }, function(result)
    vim.schedule(function()
      local parsed_ok, items = pcall(M.parse, result.stdout or '', cwd)
      if parsed_ok then
        finish(items)
      else
        local stderr = vim.trim(result.stderr or '')
        local tail = vim.split(stderr, '\n', { plain = true })
        finish(nil, ('exit %d: %s'):format(result.code, tail[#tail] ~= '' and tail[#tail] or 'no output'))
      end
    end)
  end)
  if not ok then
    finish(nil, tostring(spawn_err))
  end
end

M.title = TITLE

return M
