--- Next-edit suggestions: asks the server (`textDocument/copilotInlineEdit`, Copilot's method)
--- for the edit you are likely to make next, shows it with extmarks (the text it removes
--- highlighted as deleted, the text it inserts as virtual text) and applies it on a mapping.
--- One edit is shown per buffer at a time; any change of the buffer dismisses it.

local M = {}

M.ns = vim.api.nvim_create_namespace('stagecoder_next_edit')
local METHOD = 'textDocument/copilotInlineEdit'

vim.api.nvim_set_hl(0, 'StagecoderNextEditDelete', { default = true, link = 'DiffDelete' })
vim.api.nvim_set_hl(0, 'StagecoderNextEditInsert', { default = true, link = 'Comment' })

---@type table<integer, {edit: table, client_id: integer, changedtick: integer}>
local shown = {}

local function client_for(bufnr)
  for _, client in ipairs(vim.lsp.get_clients({ name = 'stagecoder', bufnr = bufnr })) do
    return client
  end
end

--- The edit shown in a buffer, if any (the server's object: text, range, textDocument, command).
---@param bufnr? integer
function M.current(bufnr)
  local entry = shown[bufnr or vim.api.nvim_get_current_buf()]
  return entry and entry.edit or nil
end

--- Removes the shown edit of a buffer.
---@param bufnr? integer
function M.dismiss(bufnr)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  shown[bufnr] = nil
  if vim.api.nvim_buf_is_valid(bufnr) then
    vim.api.nvim_buf_clear_namespace(bufnr, M.ns, 0, -1)
  end
end

local function show(bufnr, client, edit)
  M.dismiss(bufnr)
  local enc = client.offset_encoding
  local srow = edit.range.start.line
  local erow = edit.range['end'].line
  local line_count = vim.api.nvim_buf_line_count(bufnr)
  if srow >= line_count or erow >= line_count then
    return
  end
  local scol = vim.lsp.util._get_line_byte_from_position(bufnr, edit.range.start, enc)
  local ecol = vim.lsp.util._get_line_byte_from_position(bufnr, edit.range['end'], enc)
  if srow ~= erow or scol ~= ecol then
    vim.api.nvim_buf_set_extmark(bufnr, M.ns, srow, scol, {
      end_row = erow,
      end_col = ecol,
      hl_group = 'StagecoderNextEditDelete',
    })
  end
  local lines = vim.split(edit.text, '\n', { plain = true })
  local opts = {
    virt_text = { { lines[1], 'StagecoderNextEditInsert' } },
    virt_text_pos = 'inline',
  }
  if #lines > 1 then
    opts.virt_lines = {}
    for i = 2, #lines do
      opts.virt_lines[#opts.virt_lines + 1] = { { lines[i], 'StagecoderNextEditInsert' } }
    end
  end
  vim.api.nvim_buf_set_extmark(bufnr, M.ns, erow, ecol, opts)
  shown[bufnr] = { edit = edit, client_id = client.id, changedtick = vim.b[bufnr].changedtick }
  client:notify('textDocument/didShowInlineEdit', { item = edit })
end

--- Asks for the next edit at the cursor and shows it; `on_done(edit|nil)` runs after.
---@param bufnr? integer
---@param on_done? fun(edit: table|nil)
function M.request(bufnr, on_done)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  local client = client_for(bufnr)
  if not client then
    if on_done then on_done(nil) end
    return
  end
  local win = vim.fn.bufwinid(bufnr)
  local params = vim.lsp.util.make_position_params(win ~= -1 and win or 0, client.offset_encoding)
  params.textDocument.version = vim.lsp.util.buf_versions[bufnr]
  local version = params.textDocument.version
  client:request(METHOD, params, function(err, result)
    local edit = not err and result and result.edits and result.edits[1] or nil
    if edit and (edit.textDocument or {}).version ~= vim.lsp.util.buf_versions[bufnr] then
      edit = nil -- the buffer changed while the server worked
    end
    if edit and version == vim.lsp.util.buf_versions[bufnr] then
      show(bufnr, client, edit)
    end
    if on_done then on_done(edit) end
  end, bufnr)
end

--- Applies the shown edit; false when none is shown (so a mapping can fall back).
---@param bufnr? integer
---@return boolean
function M.accept(bufnr)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  local entry = shown[bufnr]
  if not entry or entry.changedtick ~= vim.b[bufnr].changedtick then
    M.dismiss(bufnr)
    return false
  end
  local client = vim.lsp.get_client_by_id(entry.client_id)
  M.dismiss(bufnr)
  if not client then
    return false
  end
  local edit = entry.edit
  vim.lsp.util.apply_text_edits({ { range = edit.range, newText = edit.text } }, bufnr,
    client.offset_encoding)
  if edit.command then
    client:exec_cmd(edit.command, { bufnr = bufnr })
  end
  return true
end

--- Automatic requests after changes (debounced), and dismissal on any change.
---@param bufnr integer
---@param debounce_ms integer
function M.enable(bufnr, debounce_ms)
  local timer = vim.uv.new_timer()
  local group = vim.api.nvim_create_augroup('stagecoder_next_edit_' .. bufnr, { clear = true })
  vim.api.nvim_create_autocmd({ 'TextChanged', 'TextChangedI' }, {
    group = group,
    buffer = bufnr,
    callback = function()
      M.dismiss(bufnr)
      timer:stop()
      timer:start(debounce_ms, 0, vim.schedule_wrap(function()
        if vim.api.nvim_buf_is_valid(bufnr) then
          M.request(bufnr)
        end
      end))
    end,
  })
  vim.api.nvim_create_autocmd('BufUnload', {
    group = group,
    buffer = bufnr,
    callback = function()
      timer:stop()
      timer:close()
      shown[bufnr] = nil
    end,
  })
end

return M
