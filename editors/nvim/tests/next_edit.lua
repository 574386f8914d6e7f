-- Next edits in Neovim 0.11 against the real server and a fake model over HTTP
-- (tests/fakes/openai_server.py, started from here): after a change, an edit is requested,
-- shown as extmarks (the replaced text highlighted, the new text as virtual text), accepted
-- with the plugin's mapping, and the buffer then holds the edit.
-- Run: nvim --headless --clean -l editors/nvim/tests/next_edit.lua (from the repository root,
-- with the venv's bin on PATH).

local T = dofile(vim.fs.joinpath(vim.fn.fnamemodify(debug.getinfo(1, 'S').source:sub(2), ':p:h'), 'helpers.lua'))
T.load_plugin()

local BEFORE = {
  'def area(r):',
  '    return r * r',
  '',
  '',
  'def perimeter(r):',
  '    return 4 * r',
}
-- The model's answer: the editable region around the cursor (lines 3 to the end) rewritten.
local ANSWER = '```python\n\n\ndef perimeter(radius):\n    return 4 * radius\n```'
local repo = vim.fs.dirname(vim.fs.dirname(T.plugin_root))

local port
local fake = vim.system({ 'python', '-m', 'tests.fakes.openai_server', '--port', '0', '--text', ANSWER },
  { cwd = repo, stdout = function(_, data)
    if data and not port then
      port = tonumber(data:match('(%d+)'))
    end
  end })
T.wait(20000, function() return port end, 'the fake model server')

local root = T.workspace({ ['pyproject.toml'] = '[project]\nname = "w"\n',
                           ['shapes.py'] = table.concat(BEFORE, '\n') .. '\n' })
vim.cmd.cd(root)
require('stagecoder').setup({
  settings = { chat = { url = ('http://127.0.0.1:%d'):format(port) }, nextEdit = { debounceMs = 0 } },
  next_edit = { debounce_ms = 50 },
})
vim.cmd.edit(vim.fs.joinpath(root, 'shapes.py'))
local bufnr = vim.api.nvim_get_current_buf()
local next_edit = require('stagecoder.next_edit')

T.case('edit_shown_as_extmarks', function()
  T.wait(20000, function() return #require('stagecoder').clients(bufnr) > 0 end, 'the client')
  -- The user renames area's parameter: the history the model sees.
  vim.api.nvim_buf_set_lines(bufnr, 0, 2, false, { 'def area(radius):', '    return radius * radius' })
  vim.api.nvim_win_set_cursor(0, { 5, #'def perimeter(' })
  local done, got = false, nil
  next_edit.request(bufnr, function(edit) done, got = true, edit end)
  T.wait(20000, function() return done end, 'the next edit')
  T.truthy(got, 'the server proposed no edit')
  T.eq('radius):\n    return 4 * radius', got.text, 'edit text')
  local marks = vim.api.nvim_buf_get_extmarks(bufnr, next_edit.ns, 0, -1, { details = true })
  T.eq(2, #marks, 'extmarks: the replaced text and the inserted text')
  local deleted, inserted = marks[1], marks[2]
  T.eq({ 4, #'def perimeter(' }, { deleted[2], deleted[3] }, 'replaced text starts at the name')
  T.eq('StagecoderNextEditDelete', deleted[4].hl_group, 'replaced text highlight')
  T.eq('radius):', inserted[4].virt_text[1][1], 'inserted text, first line')
  T.eq('    return 4 * radius', inserted[4].virt_lines[1][1][1], 'inserted text, next line')
end)

T.case('mapping_accepts_the_edit', function()
  local lhs = vim.api.nvim_replace_termcodes('<M-CR>', true, false, true)
  vim.api.nvim_feedkeys(lhs, 'x', false)
  T.eq({ 'def area(radius):', '    return radius * radius', '', '', 'def perimeter(radius):',
         '    return 4 * radius' }, vim.api.nvim_buf_get_lines(bufnr, 0, -1, false), 'buffer')
  T.eq(0, #vim.api.nvim_buf_get_extmarks(bufnr, next_edit.ns, 0, -1, {}), 'marks cleared')
  T.eq(nil, next_edit.current(bufnr), 'nothing shown')
end)

fake:kill(15)
T.finish()
