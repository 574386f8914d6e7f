-- The plugin's pure parts, no server: option handling, the LSP config, the review parser,
-- completion items for Neovim 0.11, and the 0.12 inline-completion branch (with a stand-in).
-- Run: nvim --headless --clean -l editors/nvim/tests/unit.lua

local T = dofile(vim.fs.joinpath(vim.fn.fnamemodify(debug.getinfo(1, 'S').source:sub(2), ':p:h'), 'helpers.lua'))
T.load_plugin()

local stagecoder = require('stagecoder')

T.case('setup_options_validated', function()
  local ok, err = pcall(stagecoder.resolve, { commnd = { 'x' } })
  T.eq(false, ok, 'unknown option accepted')
  T.truthy(tostring(err):find('commnd', 1, true), 'error names the option: ' .. tostring(err))
  ok, err = pcall(stagecoder.resolve, { command = 'stagecoder' })
  T.eq(false, ok, 'a string command accepted')
  T.truthy(tostring(err):find('command', 1, true), tostring(err))
  ok, err = pcall(stagecoder.resolve, { keymaps = { quickfx = 'x' } })
  T.eq(false, ok, 'unknown keymap accepted')
  T.truthy(tostring(err):find('quickfx', 1, true), tostring(err))
end)

T.case('setup_options_merge', function()
  local config = stagecoder.resolve({
    command = { 'python', '-m', 'lsp_server' },
    filetypes = { 'python' },
    keymaps = { refactor = '<leader>r', review = false },
  })
  T.eq({ 'python', '-m', 'lsp_server' }, config.command, 'command replaces the default')
  T.eq({ 'python' }, config.filetypes, 'filetypes replace the default')
  T.eq('<leader>r', config.keymaps.refactor, 'overridden keymap')
  T.eq(false, config.keymaps.review, 'disabled keymap')
  T.eq('grq', config.keymaps.quickfix, 'other keymaps keep their default')
  T.eq(true, config.review.open, 'review.open default')
  T.eq(false, stagecoder.resolve({ keymaps = false }).keymaps, 'keymaps = false')
end)

T.case('lsp_config', function()
  local config = stagecoder.lsp_config(stagecoder.resolve({
    settings = { completion = { url = 'http://gpu:8000' }, stages = {}, review = { select = {} } },
  }))
  T.eq({ 'stagecoder', 'serve' }, config.cmd, 'cmd')
  T.eq('http://gpu:8000', config.settings.stagecoder.completion.url, 'settings.stagecoder')
  -- Empty objects must go out as {} (the server rejects a list where it expects an object),
  -- and empty lists as [].
  local json = vim.json.encode(config.init_options)
  T.truthy(json:find('"stages":{}', 1, true), 'empty object sent as {}: ' .. json)
  T.truthy(json:find('"select":[]', 1, true), 'empty list sent as []: ' .. json)
  T.eq(
    {
      completion = { url = 'http://gpu:8000' },
      review = { select = {} },
      stages = {},
      nextEdit = { debounceMs = 0 }, -- the plugin debounces next edits itself
    },
    vim.json.decode(json),
    'initializationOptions'
  )
  local function init_json(opts)
    return vim.json.encode(stagecoder.lsp_config(stagecoder.resolve(opts)).init_options)
  end
  T.eq('{"nextEdit":{"debounceMs":0}}', init_json({}), 'default settings')
  T.eq('{}', init_json({ next_edit = { enabled = false } }), 'empty settings')
  T.eq(
    { nextEdit = { debounceMs = 40, format = 'zeta' } },
    vim.json.decode(init_json({ settings = { nextEdit = { debounceMs = 40, format = 'zeta' } } })),
    "the user's own server debounce is kept"
  )
end)

T.case('review_parse', function()
  local review = require('stagecoder.review')
  local items = review.parse(
    vim.json.encode({
      findings = {
        {
          path = 'pkg/a.py',
          rule = 'mutable-default',
          severity = 'error',
          message = 'mutable default',
          range = { start = { line = 0, character = 6 }, ['end'] = { line = 0, character = 14 } },
        },
      },
    }),
    '/proj'
  )
  T.eq(1, #items, 'items')
  local it = items[1]
  T.eq(
    { '/proj/pkg/a.py', 1, 7, 1, 15, 'E', '[mutable-default] mutable default' },
    { it.filename, it.lnum, it.col, it.end_lnum, it.end_col, it.type, it.text },
    'LSP range (0-based) to quickfix (1-based)'
  )
  local flat = review.parse(
    vim.json.encode({ { file = '/abs/b.py', code = 'E1', message = 'n', line = 3, column = 5 } })
  )
  T.eq({ '/abs/b.py', 3, 5, 'W' }, { flat[1].filename, flat[1].lnum, flat[1].col, flat[1].type }, 'flat 1-based')
  local grouped = review.parse(vim.json.encode({
    files = { { path = '/c.py', findings = { { rule = 'r', message = 'p', location = { row = 2, column = 1 } } } } },
  }))
  T.eq({ '/c.py', 2, 1 }, { grouped[1].filename, grouped[1].lnum, grouped[1].col }, 'grouped by file')
  T.eq(false, pcall(review.parse, 'not json'), 'not JSON raises')
end)

T.case('inline_completion_guard', function()
  local buf = vim.api.nvim_create_buf(true, false)
  vim.api.nvim_set_current_buf(buf) -- maparg() looks at the current buffer's mappings
  local client = { name = 'stagecoder', id = 1 }
  stagecoder.config = stagecoder.resolve({})
  local real = vim.lsp.inline_completion
  -- Neovim 0.12+: the native API is enabled for the buffer and the accept key maps to it.
  local calls = {}
  vim.lsp.inline_completion = {
    enable = function(...)
      calls[#calls + 1] = { ... }
    end,
    get = function() end,
    select = function() end,
  }
  local ok, err = pcall(stagecoder.attach, client, buf)
  vim.lsp.inline_completion = real
  T.truthy(ok, tostring(err))
  T.eq({ { true, { bufnr = buf } } }, calls, 'vim.lsp.inline_completion.enable calls')
  T.eq(1, vim.fn.maparg('<M-l>', 'i', false, true).buffer, 'accept keymap')
  T.eq('', vim.fn.maparg('<M-\\>', 'i'), 'no popup-menu fallback on 0.12')
  -- Neovim 0.11 (this binary): completion items from textDocument/completion instead.
  T.eq(nil, vim.lsp.inline_completion, 'this test runs on 0.11')
  local buf2 = vim.api.nvim_create_buf(true, false)
  vim.api.nvim_set_current_buf(buf2)
  local real_enable = vim.lsp.completion.enable
  calls = {}
  vim.lsp.completion.enable = function(...)
    calls[#calls + 1] = { ... }
  end
  ok, err = pcall(stagecoder.attach, client, buf2)
  vim.lsp.completion.enable = real_enable
  T.truthy(ok, tostring(err))
  T.eq({ { true, 1, buf2, { autotrigger = false } } }, calls, 'vim.lsp.completion.enable calls')
  T.eq(1, vim.fn.maparg('<M-\\>', 'i', false, true).buffer, 'complete keymap on 0.11')
  T.eq('', vim.fn.maparg('<M-l>', 'i'), 'no accept keymap on 0.11')
end)

T.case('help_tags', function()
  local doc = vim.fs.joinpath(T.plugin_root, 'doc')
  local out = vim.fn.tempname()
  vim.fn.mkdir(out, 'p')
  vim.fn.writefile(vim.fn.readfile(vim.fs.joinpath(doc, 'stagecoder.txt')), vim.fs.joinpath(out, 'stagecoder.txt'))
  vim.cmd.helptags(out) -- errors on duplicate tags
  local tags = table.concat(vim.fn.readfile(vim.fs.joinpath(out, 'tags')), '\n')
  for _, tag in ipairs({ 'stagecoder', 'stagecoder-setup', 'stagecoder-settings', ':StagecoderReview', 'stagecoder-keymaps' }) do
    T.truthy(tags:find(tag .. '\t', 1, true), 'missing help tag ' .. tag)
  end
end)

T.finish()
