--- `:checkhealth stagecoder`: Neovim version, the executable, the language server, the model.

local M = {}

local health = vim.health

--- host, port of an http(s) URL, or nil.
local function host_port(url)
  local scheme, host, port = tostring(url):match('^(https?)://%[?([^%]/:]+)%]?:?(%d*)')
  if not scheme then
    return nil
  end
  return host, tonumber(port) or (scheme == 'https' and 443 or 80)
end

--- Whether a TCP connection to host:port opens within `timeout_ms`.
local function reachable(host, port, timeout_ms)
  local addrs = vim.uv.getaddrinfo(host, tostring(port), { socktype = 'stream' })
  if not addrs or not addrs[1] then
    return false, 'cannot resolve ' .. host
  end
  local tcp = vim.uv.new_tcp()
  if not tcp then
    return false, 'no socket'
  end
  local done, err = false, nil
  tcp:connect(addrs[1].addr, port, function(e)
    err = e
    done = true
  end)
  vim.wait(timeout_ms, function()
    return done
  end, 10)
  if not tcp:is_closing() then
    tcp:close()
  end
  if not done then
    return false, ('no answer within %d ms'):format(timeout_ms)
  end
  return err == nil, err
end

local function check_neovim()
  local v = vim.version()
  local version = ('%d.%d.%d'):format(v.major, v.minor, v.patch)
  if vim.fn.has('nvim-0.11') == 0 then
    health.error('Neovim ' .. version .. ': stagecoder needs 0.11 or newer (vim.lsp.config)')
    return
  end
  health.ok('Neovim ' .. version)
  if vim.lsp.inline_completion then
    health.ok('inline completion: native ghost text (vim.lsp.inline_completion)')
  else
    health.info(
      'inline completion: Neovim < 0.12 has no ghost text; suggestions come as completion items '
        .. '(insert mode, keymaps.complete)'
    )
  end
end

local function check_executable(config)
  local exe = config.command[1]
  local path = vim.fn.exepath(exe)
  if path == '' then
    health.error(('`%s` not found'):format(exe), {
      "Install stagecoder from a checkout (pip install -e '.[cpu]' in the repository root) "
        .. 'or set `command` in setup{}, e.g. '
        .. "command = { '/path/to/.venv/bin/stagecoder' }",
    })
    return false
  end
  local cmd = vim.list_extend(vim.deepcopy(config.command), { '--version' })
  local ok, result = pcall(function()
    return vim.system(cmd, { text = true }):wait(10000)
  end)
  if not ok or result.code ~= 0 then
    local why = ok and (vim.trim(result.stderr or '') .. ' (exit ' .. tostring(result.code) .. ')')
      or tostring(result)
    health.error(('`%s --version` failed: %s'):format(table.concat(config.command, ' '), why))
    return false
  end
  health.ok(('%s (%s)'):format(vim.trim(result.stdout), path))
  return true
end

local function check_server(config)
  if vim.lsp.is_enabled and not vim.lsp.is_enabled('stagecoder') then
    health.warn('the language server is not enabled', {
      "Call require('stagecoder').setup{} in your config",
    })
    return
  end
  health.ok('language server enabled for: ' .. table.concat(config.filetypes, ', '))
  local clients = require('stagecoder').clients()
  if #clients == 0 then
    health.info('no client running (it starts when you open a file of those filetypes)')
    return
  end
  for _, client in ipairs(clients) do
    local buffers = vim.tbl_keys(client.attached_buffers)
    if client:is_stopped() then
      health.error(('client %d has stopped; :StagecoderRestart'):format(client.id))
    else
      health.ok(
        ('client %d running (%s positions), root %s, %d buffer%s'):format(
          client.id,
          client.offset_encoding,
          client.root_dir or '(none)',
          #buffers,
          #buffers == 1 and '' or 's'
        )
      )
    end
  end
end

local function check_model(config)
  local completion = config.settings.completion or {}
  local url = completion.url or 'http://127.0.0.1:8000'
  local host, port = host_port(url)
  if not host then
    health.error(('settings.completion.url is not an http(s) URL: %s'):format(url))
    return
  end
  local ok, err = reachable(host, port, 1000)
  if ok then
    health.ok(('completion model endpoint %s is reachable'):format(url))
  else
    health.warn(('completion model endpoint %s is not reachable (%s)'):format(url, err), {
      'Completions stay empty until it is: start vLLM, or set settings.completion.url in setup{}',
    })
  end
end

function M.check()
  health.start('stagecoder')
  local config = require('stagecoder').config
  check_neovim()
  if check_executable(config) then
    check_server(config)
  end
  check_model(config)
end

return M
