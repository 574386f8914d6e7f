--- stagecoder for Neovim: starts `stagecoder serve` through `vim.lsp.config`/`vim.lsp.enable`,
--- sets buffer-local keymaps when it attaches, and wires inline completion. See `:help stagecoder`.

local M = {}

--- The server's languages (analysis/documents/languages.py) by Neovim filetype.
local FILETYPES = {
  'python',
  'javascript',
  'javascriptreact',
  'typescript',
  'typescriptreact',
  'go',
  'rust',
  'java',
  'c',
  'cpp',
}

---@class stagecoder.Keymaps
---@field quickfix string|false Normal mode: quick fixes at the cursor.
---@field refactor string|false Normal and visual mode: refactors of the cursor or selection.
---@field review string|false Normal mode: `:StagecoderReview`.
---@field complete string|false Insert mode, Neovim 0.11: the suggestion as a completion item.
---@field accept string|false Insert mode, Neovim 0.12+: accept the ghost text.
---@field next string|false Insert mode, Neovim 0.12+: next suggestion.
---@field prev string|false Insert mode, Neovim 0.12+: previous suggestion.
---@field accept_edit string|false Normal and insert mode: apply the next edit shown.
---@field dismiss_edit string|false Normal and insert mode: dismiss the next edit shown.

---@class stagecoder.Options
---@field command string[] The `stagecoder` executable and leading arguments; `serve`/`review` are appended.
---@field filetypes string[] Filetypes to attach to.
---@field root_markers string[] Files that mark a project root.
---@field settings table Section `stagecoder` (camelCase keys, see `:help stagecoder-settings`).
---@field inline_completion boolean Ghost text (0.12+) or completion items (0.11).
---@field keymaps stagecoder.Keymaps|false Buffer-local keymaps; `false` sets none.
---@field review { open: boolean } `open`: open the quickfix window when a review finds something.
---@field next_edit { enabled: boolean, debounce_ms: integer } Next-edit suggestions after changes.
---@field on_attach? fun(client: vim.lsp.Client, bufnr: integer) Called after stagecoder's own attach.

---@type stagecoder.Options
M.defaults = {
  command = { 'stagecoder' },
  filetypes = FILETYPES,
  root_markers = {
    'pyproject.toml',
    'setup.py',
    'package.json',
    'go.mod',
    'Cargo.toml',
    'pom.xml',
    'build.gradle',
    '.git',
  },
  settings = {},
  inline_completion = true,
  keymaps = {
    quickfix = 'grq',
    refactor = 'grx',
    review = '<leader>sR',
    complete = '<M-\\>',
    accept = '<M-l>',
    next = '<M-]>',
    prev = '<M-[>',
    accept_edit = '<M-CR>',
    dismiss_edit = false,
  },
  next_edit = { enabled = true, debounce_ms = 150 },
  review = { open = true },
  on_attach = nil,
}

--- The options in force: the defaults until `setup()` is called.
---@type stagecoder.Options
M.config = vim.deepcopy(M.defaults)

--- Settings keys whose values are objects: sent as `{}` (not `[]`) when empty.
local OBJECT_KEYS = {
  completion = true,
  chat = true,
  context = true,
  stages = true,
  review = true,
  sparse = true,
  nextEdit = true,
  perPathIgnores = true,
}

--- `settings` with empty object tables marked as JSON objects (Lua's `{}` encodes as `[]`).
---@param settings table
---@return table
function M.json_settings(settings)
  local function walk(value, is_object)
    if type(value) ~= 'table' then
      return value
    end
    if next(value) == nil then
      return is_object and vim.empty_dict() or value
    end
    local out = {}
    for k, v in pairs(value) do
      out[k] = walk(v, OBJECT_KEYS[k] == true)
    end
    return out
  end
  return walk(settings, true)
end

local function check_string_list(name, value)
  vim.validate(name, value, function(v)
    if type(v) ~= 'table' or #v == 0 then
      return false
    end
    for _, part in ipairs(v) do
      if type(part) ~= 'string' or part == '' then
        return false
      end
    end
    return true
  end, 'a non-empty list of strings')
end

--- Merged and validated options; raises with the offending option's name.
---@param opts table?
---@return stagecoder.Options
function M.resolve(opts)
  opts = opts or {}
  vim.validate('opts', opts, 'table')
  for key in pairs(opts) do
    if M.defaults[key] == nil and key ~= 'on_attach' then
      error(('stagecoder.setup: unknown option `%s`'):format(key), 0)
    end
  end
  local config = vim.deepcopy(M.defaults)
  for key, value in pairs(opts) do
    if key == 'keymaps' and type(value) == 'table' then
      config.keymaps = vim.tbl_extend('force', config.keymaps, value)
    elseif key == 'review' and type(value) == 'table' then
      config.review = vim.tbl_extend('force', config.review, value)
    elseif key == 'next_edit' and type(value) == 'table' then
      config.next_edit = vim.tbl_extend('force', config.next_edit, value)
    else
      config[key] = value -- lists replace the default, they are not merged by index
    end
  end
  check_string_list('command', config.command)
  check_string_list('filetypes', config.filetypes)
  check_string_list('root_markers', config.root_markers)
  vim.validate('settings', config.settings, 'table')
  vim.validate('inline_completion', config.inline_completion, 'boolean')
  vim.validate('keymaps', config.keymaps, { 'table', 'boolean' })
  if config.keymaps == true then
    config.keymaps = vim.deepcopy(M.defaults.keymaps)
  end
  if config.keymaps then
    for name, lhs in pairs(config.keymaps) do
      if M.defaults.keymaps[name] == nil then
        error(('stagecoder.setup: unknown keymap `%s`'):format(name), 0)
      end
      vim.validate('keymaps.' .. name, lhs, { 'string', 'boolean' })
    end
  end
  vim.validate('review.open', config.review.open, 'boolean')
  vim.validate('next_edit', config.next_edit, 'table')
  vim.validate('next_edit.enabled', config.next_edit.enabled, 'boolean')
  vim.validate('next_edit.debounce_ms', config.next_edit.debounce_ms, 'number')
  vim.validate('on_attach', config.on_attach, 'function', true)
  return config
end

--- The `vim.lsp.config` table for the options.
---@param config stagecoder.Options
---@return vim.lsp.Config
function M.lsp_config(config)
  local raw = config.settings
  if config.next_edit.enabled then
    -- The plugin waits `next_edit.debounce_ms` itself before it asks, so the server must not
    -- wait again (unless the user's own `settings.nextEdit.debounceMs` says otherwise).
    local next_edit = vim.tbl_extend('keep', raw.nextEdit or {}, { debounceMs = 0 })
    raw = vim.tbl_extend('force', raw, { nextEdit = next_edit })
  end
  local settings = M.json_settings(raw)
  local cmd = vim.list_extend(vim.deepcopy(config.command), { 'serve' })
  return {
    cmd = cmd,
    filetypes = config.filetypes,
    root_markers = config.root_markers,
    init_options = settings,
    settings = { stagecoder = settings },
  }
end

local function map(bufnr, mode, lhs, rhs, desc)
  if lhs then
    vim.keymap.set(mode, lhs, rhs, { buffer = bufnr, desc = 'stagecoder: ' .. desc, silent = true })
  end
end

--- Keymaps and inline completion for a buffer the server attached to (run on |LspAttach|).
---@param client vim.lsp.Client
---@param bufnr integer
function M.attach(client, bufnr)
  local config = M.config
  local keys = config.keymaps or {}
  map(bufnr, 'n', keys.quickfix, function()
    vim.lsp.buf.code_action({ context = { only = { 'quickfix' } } })
  end, 'quick fixes')
  map(bufnr, { 'n', 'x' }, keys.refactor, function()
    vim.lsp.buf.code_action({ context = { only = { 'refactor' } } })
  end, 'refactor')
  map(bufnr, 'n', keys.review, function()
    require('stagecoder.review').run()
  end, 'review the project')

  if config.inline_completion then
    if vim.lsp.inline_completion then -- Neovim 0.12+: native ghost text
      vim.lsp.inline_completion.enable(true, { bufnr = bufnr })
      map(bufnr, 'i', keys.accept, function()
        vim.lsp.inline_completion.get()
      end, 'accept the suggestion')
      if vim.lsp.inline_completion.select then
        map(bufnr, 'i', keys.next, function()
          vim.lsp.inline_completion.select({ count = 1 })
        end, 'next suggestion')
        map(bufnr, 'i', keys.prev, function()
          vim.lsp.inline_completion.select({ count = -1 })
        end, 'previous suggestion')
      end
    else -- Neovim 0.11: the server answers textDocument/completion with the same suggestions
      vim.lsp.completion.enable(true, client.id, bufnr, { autotrigger = false })
      map(bufnr, 'i', keys.complete, function()
        vim.lsp.completion.get()
      end, 'complete')
    end
  end

  if config.next_edit.enabled then
    local next_edit = require('stagecoder.next_edit')
    next_edit.enable(bufnr, config.next_edit.debounce_ms)
    map(bufnr, { 'n', 'i' }, keys.accept_edit, function()
      next_edit.accept(bufnr)
    end, 'accept the next edit')
    map(bufnr, { 'n', 'i' }, keys.dismiss_edit, function()
      next_edit.dismiss(bufnr)
    end, 'dismiss the next edit')
  end

  if config.on_attach then
    config.on_attach(client, bufnr)
  end
end

--- Configures and enables the language server. Call once, from your config.
---@param opts? stagecoder.Options|table
function M.setup(opts)
  M.config = M.resolve(opts)
  vim.lsp.config('stagecoder', M.lsp_config(M.config))
  local group = vim.api.nvim_create_augroup('stagecoder', { clear = true })
  vim.api.nvim_create_autocmd('LspAttach', {
    group = group,
    callback = function(ev)
      local client = vim.lsp.get_client_by_id(ev.data.client_id)
      if client and client.name == 'stagecoder' then
        M.attach(client, ev.buf)
      end
    end,
  })
  vim.lsp.enable('stagecoder')
end

--- Running stagecoder clients (for a buffer when `bufnr` is given).
---@param bufnr? integer
---@return vim.lsp.Client[]
function M.clients(bufnr)
  return vim.lsp.get_clients({ name = 'stagecoder', bufnr = bufnr })
end

--- Stops the server and starts it again for the buffers that had it.
function M.restart()
  vim.lsp.enable('stagecoder', false)
  local stopped = vim.wait(5000, function()
    return #M.clients() == 0
  end, 50)
  if not stopped then
    for _, client in ipairs(M.clients()) do
      client:stop(true)
    end
  end
  vim.lsp.enable('stagecoder')
end

return M
