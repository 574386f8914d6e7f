-- The plugin against the real server (`stagecoder` on PATH), as a user meets it: setup{} with
-- defaults, open a Python file, diagnostics, code actions through the plugin's keymaps, the quick
-- fix applied by Neovim, :StagecoderReview, :checkhealth stagecoder, :StagecoderRestart.
-- Run: nvim --headless --clean -l editors/nvim/tests/lsp.lua

local T = dofile(vim.fs.joinpath(vim.fn.fnamemodify(debug.getinfo(1, 'S').source:sub(2), ':p:h'), 'helpers.lua'))
T.load_plugin()

local BAD = {
  'def f(items=[]):', -- line 1: SC303 mutable default
  '    return items',
  '',
  '',
  'def g(x):',
  '    if x is 1:', -- line 6: SC305 `is` with a literal (unsafe fix: `==`)
  '        return 1',
  '    try:',
  '        return 2',
  '    finally:',
  '        print(x == float("nan"))', -- line 11: SC306 comparison with NaN
}
local SHAPES = {
  'def area(width, height):',
  '    scale = 2',
  '    base = width * height',
  '    return base * scale',
}

local root = T.workspace({
  ['pyproject.toml'] = '[project]\nname = "w"\n',
  ['bad.py'] = table.concat(BAD, '\n') .. '\n',
  ['shapes.py'] = table.concat(SHAPES, '\n') .. '\n',
})
vim.cmd.cd(root)

-- Everything the plugin tells the user, and every list it offers.
local notes = {}
local notify = vim.notify
vim.notify = function(msg, level, opts)
  notes[#notes + 1] = { msg = msg, level = level }
  return notify(msg, level, opts)
end
-- window/showMessage goes to nvim_echo, not vim.notify: record it too.
local shown = {}
local show_message = vim.lsp.handlers['window/showMessage']
vim.lsp.handlers['window/showMessage'] = function(err, params, ctx)
  shown[#shown + 1] = params
  return show_message(err, params, ctx)
end
local offered -- the last list of code actions that vim.ui.select was given
local choose = function() return nil end -- which of them to pick
vim.ui.select = function(items, opts, on_choice)
  offered = items
  local pick = choose(items)
  on_choice(pick and items[pick] or nil, pick)
end

local function kinds(items)
  local out = {}
  for _, item in ipairs(items or {}) do
    out[#out + 1] = item.action and item.action.kind or '?'
  end
  return out
end

local function has_kind(items, prefix)
  for _, kind in ipairs(kinds(items)) do
    if vim.startswith(kind, prefix) then
      return true
    end
  end
  return false
end

--- The callback of a buffer-local mapping set by the plugin.
local function mapping(mode, lhs)
  local m = vim.fn.maparg(lhs, mode, false, true)
  T.truthy(m.buffer == 1 and m.callback, ('no buffer-local %s-mode mapping %s'):format(mode, lhs))
  return m.callback
end

local function with_code(bufnr, code)
  return vim.tbl_filter(function(d)
    return d.code == code
  end, vim.diagnostic.get(bufnr))
end

--- A loopback port with nothing listening: the "model down" endpoint.
local function closed_port()
  local tcp = assert(vim.uv.new_tcp())
  assert(tcp:bind('127.0.0.1', 0))
  local port = tcp:getsockname().port
  tcp:close()
  return port
end
local MODEL_URL = ('http://127.0.0.1:%d'):format(closed_port())

require('stagecoder').setup({ settings = { completion = { url = MODEL_URL } } })
local bad_buf

T.case('client_attaches', function()
  vim.cmd.edit('bad.py')
  bad_buf = vim.api.nvim_get_current_buf()
  local client = T.wait(15000, function()
    local c = require('stagecoder').clients(bad_buf)[1]
    return c and c.initialized and c
  end, 'the stagecoder client to attach and initialize')
  T.eq(root, client.root_dir, 'root_dir (from root_markers)')
  T.eq('utf-8', client.offset_encoding, 'negotiated position encoding')
  T.truthy(client.server_capabilities.inlineCompletionProvider, 'inlineCompletionProvider')
  T.truthy(client.server_capabilities.diagnosticProvider, 'diagnosticProvider')
  mapping('n', 'grq')
  mapping('n', 'grx')
  mapping('x', 'grx')
  mapping('i', '<M-\\>') -- Neovim 0.11: completion items; 0.12 would get ghost text instead
end)

T.case('diagnostics_appear', function()
  T.wait(10000, function()
    return #with_code(bad_buf, 'SC303') > 0
  end, 'an SC303 diagnostic, got ' .. vim.inspect(vim.diagnostic.get(bad_buf)))
  local found = {}
  for _, d in ipairs(vim.diagnostic.get(bad_buf)) do
    found[#found + 1] = ('%s@%d'):format(d.code, d.lnum)
  end
  table.sort(found)
  T.eq({ 'SC303@0', 'SC305@5', 'SC306@10' }, found, 'diagnostics (0-based lines)')
  local mutable = with_code(bad_buf, 'SC303')[1]
  T.eq('stagecoder', mutable.source, 'source')
  T.eq({ 0, 12, 0, 14 }, { mutable.lnum, mutable.col, mutable.end_lnum, mutable.end_col }, 'range of `[]`')
end)

T.case('code_action_list_has_quickfix_and_refactor', function()
  vim.api.nvim_set_current_buf(bad_buf)
  vim.api.nvim_win_set_cursor(0, { 6, 9 }) -- on `is`
  offered = nil
  choose = function() return nil end
  -- Select the flagged line and ask for code actions with Neovim's own `gra`.
  vim.api.nvim_feedkeys(vim.keycode('Vgra<Esc>'), 'mx', false)
  T.wait(5000, function() return offered end, 'the code action list')
  T.truthy(has_kind(offered, 'quickfix'), 'no quickfix among ' .. vim.inspect(kinds(offered)))
  T.truthy(has_kind(offered, 'refactor'), 'no refactor among ' .. vim.inspect(kinds(offered)))
end)

T.case('refactor_keymap_extracts_function', function()
  vim.cmd.edit('shapes.py')
  local buf = vim.api.nvim_get_current_buf()
  T.wait(10000, function() return #require('stagecoder').clients(buf) > 0 end, 'attach to shapes.py')
  mapping('x', 'grx')
  offered = nil
  choose = function(items)
    for i, item in ipairs(items) do
      if item.action and vim.startswith(item.action.kind or '', 'refactor.extract') then
        return i
      end
    end
  end
  local tick = vim.b[buf].changedtick
  vim.api.nvim_win_set_cursor(0, { 3, 4 }) -- `base = width * height`
  -- Select the line and press the refactor key, as a user does.
  vim.api.nvim_feedkeys(vim.keycode('Vgrx<Esc>'), 'mx', false)
  T.wait(5000, function() return offered end, 'the refactor list')
  T.truthy(has_kind(offered, 'refactor.extract'), 'no refactor.extract among ' .. vim.inspect(kinds(offered)))
  T.wait(5000, function() return vim.b[buf].changedtick ~= tick end, 'the refactor to edit the buffer')
  local lines = vim.api.nvim_buf_get_lines(buf, 0, -1, true)
  local defs = vim.tbl_filter(function(l) return vim.startswith(l, 'def ') end, lines)
  T.eq(2, #defs, 'a new function in ' .. vim.inspect(lines))
  T.truthy(vim.tbl_contains(lines, '    return base * scale'), vim.inspect(lines))
  T.truthy(#vim.tbl_filter(function(l)
    return l:match('^    base = [%w_]+%(width, height%)$') ~= nil
  end, lines) == 1, 'the statement became a call: ' .. vim.inspect(lines))
end)

T.case('quickfix_applies', function()
  vim.api.nvim_set_current_buf(bad_buf)
  vim.api.nvim_win_set_cursor(0, { 6, 9 })
  offered = nil
  choose = function(items)
    for i, item in ipairs(items) do
      if item.action and item.action.kind == 'quickfix' then
        return i
      end
    end
  end
  local tick = vim.b[bad_buf].changedtick
  mapping('n', 'grq')()
  T.wait(5000, function() return offered end, 'the quick fix list')
  T.truthy(has_kind(offered, 'quickfix'), 'no quickfix among ' .. vim.inspect(kinds(offered)))
  T.wait(5000, function() return vim.b[bad_buf].changedtick ~= tick end, 'the fix to edit the buffer')
  local expected = vim.deepcopy(BAD)
  expected[6] = '    if x == 1:'
  T.eq(expected, vim.api.nvim_buf_get_lines(bad_buf, 0, -1, true), 'buffer after the fix')
  T.wait(10000, function() return #with_code(bad_buf, 'SC305') == 0 end, 'the SC305 diagnostic to clear')
  T.eq(1, #with_code(bad_buf, 'SC303'), 'the other diagnostics stay')
  T.eq(true, vim.bo[bad_buf].modified, 'edited in the buffer, not written (the user saves)')
end)

T.case('review_fills_quickfix', function()
  notes = {}
  vim.cmd('StagecoderReview')
  T.wait(60000, function()
    if vim.fn.getqflist({ title = 1 }).title == 'stagecoder review' then
      return true
    end
    for _, n in ipairs(notes) do
      if n.level == vim.log.levels.ERROR then
        error(n.msg, 0)
      end
    end
  end, 'the review to fill the quickfix list')
  local items = vim.fn.getqflist()
  local got = {}
  for _, it in ipairs(items) do
    got[#got + 1] = ('%s:%d:%d %s'):format(
      vim.fn.fnamemodify(vim.api.nvim_buf_get_name(it.bufnr), ':t'),
      it.lnum,
      it.col,
      it.text:match('^%[(%w+)%]') or it.text
    )
  end
  table.sort(got)
  -- From the files on disk: bad.py still has `is 1`, the fix was not saved.
  T.eq({ 'bad.py:11:15 SC306', 'bad.py:1:13 SC303', 'bad.py:6:8 SC305' }, got, 'quickfix entries')
  T.truthy(vim.fn.getqflist({ winid = 1 }).winid ~= 0, 'the quickfix window is open')
  vim.cmd.cclose()
end)

T.case('checkhealth_ok', function()
  vim.cmd('checkhealth stagecoder')
  local text = table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), '\n')
  vim.cmd.bwipeout()
  T.truthy(text:find('stagecoder', 1, true), 'no stagecoder section:\n' .. text)
  T.truthy(not text:find('ERROR', 1, true), 'ERROR in checkhealth:\n' .. text)
  T.truthy(text:find('OK Neovim 0%.1%d'), 'Neovim version not OK:\n' .. text)
  T.truthy(text:find('OK stagecoder %d'), 'executable not OK:\n' .. text)
  T.truthy(text:find('OK client %d+ running'), 'client not OK:\n' .. text)
end)

T.case('completion_without_model', function()
  -- Neovim 0.11 has no inline completion: the plugin uses completion items
  -- (textDocument/completion). The model is down: empty, quick, no error, told once.
  local client = require('stagecoder').clients(bad_buf)[1]
  T.truthy(client:supports_method('textDocument/completion', bad_buf), 'completionProvider')
  shown = {}
  for _ = 1, 2 do
    local params = vim.lsp.util.make_position_params(0, client.offset_encoding)
    local started = vim.uv.hrtime()
    local response, err = client:request_sync('textDocument/completion', params, 10000, bad_buf)
    local ms = (vim.uv.hrtime() - started) / 1e6
    T.truthy(response, 'no response: ' .. tostring(err))
    T.eq(nil, response.err, 'error')
    local items = response.result and (response.result.items or response.result) or {}
    T.eq(0, #items, 'items without a model')
    T.truthy(ms < 5000, ('took %d ms'):format(ms))
  end
  local port = MODEL_URL:match(':(%d+)$')
  local told = T.wait(3000, function()
    local hits = vim.tbl_filter(function(m)
      return m.message:find(port, 1, true) ~= nil
    end, shown)
    return #hits > 0 and hits
  end, 'window/showMessage naming the endpoint, got ' .. vim.inspect(shown))
  T.eq(1, #told, 'told once')
end)

T.case('restart', function()
  local old = require('stagecoder').clients(bad_buf)[1].id
  vim.cmd('StagecoderRestart')
  local client = T.wait(15000, function()
    local c = require('stagecoder').clients(bad_buf)[1]
    return c and c.id ~= old and c.initialized and c
  end, 'a new client after :StagecoderRestart')
  T.truthy(vim.lsp.get_client_by_id(old) == nil or vim.lsp.get_client_by_id(old):is_stopped(), 'old client stopped')
  T.truthy(client.attached_buffers[bad_buf], 'new client attached to bad.py')
end)

T.finish()
