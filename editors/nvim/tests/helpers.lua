-- A small test harness for `nvim --headless --clean -l editors/nvim/tests/<x>.lua`.
--
-- Each case prints one line to stdout: `ok - NAME` or `not ok - NAME # REASON`, followed by
-- `# ...` lines with the traceback; the run ends with `N passed, N failed` and exits 0 only
-- when nothing failed. tests/e2e/test_nvim.py reads these lines.

local T = {}

local passed, failed = 0, 0

local function out(text)
  io.stdout:write(text, '\n')
  io.stdout:flush()
end

--- editors/nvim, from this file's own path.
T.plugin_root = vim.fn.fnamemodify(debug.getinfo(1, 'S').source:sub(2), ':p:h:h')

--- Puts the plugin on 'runtimepath' the way a plugin manager does, and sources plugin/.
function T.load_plugin()
  vim.opt.runtimepath:prepend(T.plugin_root)
  vim.cmd.runtime('plugin/stagecoder.lua')
end

--- A fresh directory holding `files` ({relative path = text}); returns its path.
function T.workspace(files)
  local root = vim.fn.tempname()
  vim.fn.mkdir(root, 'p')
  for name, text in pairs(files) do
    local path = vim.fs.joinpath(root, name)
    vim.fn.mkdir(vim.fs.dirname(path), 'p')
    local f = assert(io.open(path, 'w'))
    f:write(text)
    f:close()
  end
  return vim.uv.fs_realpath(root)
end

--- Runs one case; a Lua error or failed assertion fails it.
function T.case(name, fn)
  local ok, err = xpcall(fn, debug.traceback)
  if ok then
    passed = passed + 1
    out('ok - ' .. name)
  else
    failed = failed + 1
    local lines = vim.split(tostring(err), '\n', { plain = true })
    out(('not ok - %s # %s'):format(name, lines[1]))
    for i = 2, #lines do
      out('#   ' .. lines[i])
    end
  end
end

--- Waits (bounded) until `predicate()` is truthy; fails with `what` on timeout.
function T.wait(ms, predicate, what)
  local value
  local ok = vim.wait(ms, function()
    value = predicate()
    return value and true or false
  end, 20)
  if not ok then
    error(('timed out after %d ms waiting for %s'):format(ms, what), 2)
  end
  return value
end

function T.eq(expected, actual, what)
  if not vim.deep_equal(expected, actual) then
    error(
      ('%s: expected %s, got %s'):format(what or 'value', vim.inspect(expected), vim.inspect(actual)),
      2
    )
  end
end

function T.truthy(value, what)
  if not value then
    error(what or 'expected a true value', 2)
  end
  return value
end

--- Stops every LSP client (bounded), prints the summary line and exits.
function T.finish()
  for _, client in ipairs(vim.lsp.get_clients()) do
    client:stop()
  end
  vim.wait(5000, function()
    return #vim.lsp.get_clients() == 0
  end, 20)
  out(('%d passed, %d failed'):format(passed, failed))
  -- :cquit / :qall (not os.exit) so that Neovim cleans up its temporary directory.
  vim.cmd(failed == 0 and 'qall!' or 'cquit 1')
end

return T
